/**
 * Model-level benchmarks: a diffusion U-Net training step and DDIM sampling, coupling-flow
 * training steps and sampling, defined as in ../shared/design/TORCH_BASELINE.md, next to the
 * PyTorch CPU times measured there on the same machine kind (quoted, not re-run: PyTorch is not
 * a dependency).
 */
import { Adam, mean, randn, square, sub, tensor, tidy, type Tensor } from '@transfuse/core';
import { Flow, flowPreset, NoiseSchedule, sampleBatch, UNet2D, UNET_PRESETS } from '@transfuse/models';
import { isOk, type BenchCase, type CaseResult, type Side } from './types.js';

export interface ModelCase extends BenchCase {
  /** PyTorch's CPU median in ms (two runs) from TORCH_BASELINE.md, for the same work. */
  torchMs: [number, number];
  note?: string;
}

/** One training step of `params` with Adam: forward, MSE/NLL loss, backward, update. */
function trainSide(params: Tensor[], loss: () => Tensor, dispose: () => void): Side {
  const opt = new Adam(params, { lr: 1e-4 });
  return {
    step: () =>
      tidy(() => {
        loss().backward();
        opt.step();
        opt.zeroGrad();
      }),
    dispose: () => {
      opt.dispose();
      dispose();
    },
  };
}

function unetTrain(size: number, torchMs: [number, number], gflop: number): ModelCase {
  return {
    name: `U-Net 32-64-64 @${size}x${size} train step b64`,
    unit: 'GFLOP/s',
    kind: 'case',
    work: gflop * 1e9,
    torchMs,
    transfuse: () => {
      const model = new UNet2D({ sampleSize: size, ...UNET_PRESETS.small, numClassEmbeds: 10, seed: 1 });
      const x = randn([64, 1, size, size], { seed: 2 });
      const eps = randn([64, 1, size, size], { seed: 3 });
      const t = tensor(Int32Array.from({ length: 64 }, (_, i) => (i * 15) % 1000));
      const labels = tensor(Int32Array.from({ length: 64 }, (_, i) => i % 10));
      return trainSide(model.parameters(), () => mean(square(sub(model.forward(x, t, labels), eps))), () => {
        model.dispose();
        [x, eps, t, labels].forEach((v) => v.dispose());
      });
    },
  };
}

function unetSample(size: number, torchMs: [number, number], gflopPerStep: number, steps: number): ModelCase {
  return {
    name: `U-Net 32-64-64 @${size}x${size} sample 64 images, ${steps} DDIM steps`,
    unit: 'GFLOP/s',
    kind: 'case',
    work: gflopPerStep * steps * 1e9,
    torchMs,
    note: `PyTorch ran 100 DDPM steps; its time is scaled to ${steps} steps (the network dominates both)`,
    transfuse: () => {
      const model = new UNet2D({ sampleSize: size, ...UNET_PRESETS.small, numClassEmbeds: 10, seed: 1 });
      model.eval();
      const schedule = new NoiseSchedule();
      const labels = tensor(Int32Array.from({ length: 64 }, (_, i) => i % 10));
      return {
        step: () => sampleBatch(schedule, (x, t) => model.forward(x, t, labels), [64, 1, size, size], { sampler: 'ddim', steps, seed: 4 }).dispose(),
        dispose: () => {
          model.dispose();
          labels.dispose();
          schedule.dispose();
        },
      };
    },
  };
}

function flowTrain(preset: 'realnvp' | 'nice' | 'realnvp-cond', torchMs: [number, number], gflop: number): ModelCase {
  return {
    name: `flow ${preset} 256-dim train step b256`,
    unit: 'GFLOP/s',
    kind: 'case',
    work: gflop * 1e9,
    torchMs,
    transfuse: () => {
      const flow = new Flow(flowPreset(preset, { seed: 1 }));
      const x = randn([256, 256], { seed: 2, std: 0.5 });
      const cond = preset === 'realnvp-cond' ? { labels: tensor(Int32Array.from({ length: 256 }, (_, i) => i % 10)) } : undefined;
      return trainSide(flow.parameters(), () => flow.nll(x, cond), () => {
        flow.dispose();
        x.dispose();
        cond?.labels.dispose();
      });
    },
  };
}

function flowSample(preset: 'realnvp' | 'nice', torchMs: [number, number], gflop: number): ModelCase {
  return {
    name: `flow ${preset} sample 1000`,
    unit: 'GFLOP/s',
    kind: 'case',
    work: gflop * 1e9,
    torchMs,
    transfuse: () => {
      const flow = new Flow(flowPreset(preset, { seed: 1 }));
      flow.eval();
      return { step: () => flow.sample(1000, { seed: 5 }).dispose(), dispose: () => flow.dispose() };
    },
  };
}

/** The cases, with the FLOP counts of TORCH_BASELINE.md. */
export function modelCases(): ModelCase[] {
  return [
    unetTrain(16, [302, 257], 34.07),
    unetTrain(28, [839, 725], 104.31),
    unetSample(16, [4200, 4600], 11.36, 50),
    flowTrain('realnvp', [51.6, 46.2], 5.637),
    flowTrain('realnvp-cond', [80.7, 52.9], 5.7),
    flowTrain('nice', [54.3, 43.6], 4.832),
    flowSample('realnvp', [69.0, 48.9], 7.34),
    flowSample('nice', [42.0, 53.0], 6.291),
  ];
}

/** Markdown: case, Transfuse median, PyTorch CPU (two runs), Transfuse / PyTorch time, GFLOP/s. */
export function formatModelTable(cases: readonly ModelCase[], results: readonly CaseResult[]): string {
  const rows = results.map((r, i) => {
    const c = cases[i];
    const torch = (c.torchMs[0] + c.torchMs[1]) / 2;
    if (!isOk(r.transfuse)) return `| ${r.name} | ${r.transfuse.error} | ${c.torchMs.join(' / ')} ms | — | — |`;
    const ms = r.transfuse.medianMs;
    return `| ${r.name} | ${ms.toFixed(0)} ms | ${c.torchMs.join(' / ')} ms | ${(ms / torch).toFixed(1)}x | ${r.transfuse.throughput.toFixed(2)} |`;
  });
  const notes = cases.filter((c) => c.note).map((c) => `- ${c.name}: ${c.note}.`);
  return ['| case | Transfuse (median) | PyTorch CPU (run 1 / run 2) | Transfuse time / PyTorch time | Transfuse GFLOP/s |', '|---|---|---|---|---|', ...rows, '', ...notes].join('\n');
}
