/**
 * Model-level benchmarks: a diffusion U-Net training step and DDIM sampling, coupling-flow
 * training steps and sampling, defined as in ../shared/design/TORCH_BASELINE.md. Each case names
 * the same workload in ../torch_peer.py, which `--peer torch` runs in the same rounds.
 */
import { Adam, mean, randn, square, sub, tensor, tidy, type Tensor } from '@transfuse/core';
import { Flow, flowPreset, NoiseSchedule, sampleBatch, UNet2D, UNET_PRESETS } from '@transfuse/models';
import { isOk, type BenchCase, type CaseResult, type Side } from './types.js';

export interface ModelCase extends BenchCase {
  torch: string;
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

function unetTrain(size: number, gflop: number): ModelCase {
  return {
    name: `U-Net 32-64-64 @${size}x${size} train step b64`,
    unit: 'GFLOP/s',
    kind: 'case',
    work: gflop * 1e9,
    torch: `unet-train:${size}`,
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

function unetSample(size: number, gflopPerStep: number, steps: number): ModelCase {
  return {
    name: `U-Net 32-64-64 @${size}x${size} sample 64 images, ${steps} DDIM steps`,
    unit: 'GFLOP/s',
    kind: 'case',
    work: gflopPerStep * steps * 1e9,
    torch: `unet-sample:${size}:${steps}`,
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

function flowTrain(preset: 'realnvp' | 'nice' | 'realnvp-cond', gflop: number): ModelCase {
  return {
    name: `flow ${preset} 256-dim train step b256`,
    unit: 'GFLOP/s',
    kind: 'case',
    work: gflop * 1e9,
    torch: `flow-train:${preset}`,
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

function flowSample(preset: 'realnvp' | 'nice', gflop: number): ModelCase {
  return {
    name: `flow ${preset} sample 1000`,
    unit: 'GFLOP/s',
    kind: 'case',
    work: gflop * 1e9,
    torch: `flow-sample:${preset}`,
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
    unetTrain(16, 34.07),
    unetTrain(28, 104.31),
    unetSample(16, 11.36, 50),
    flowTrain('realnvp', 5.637),
    flowTrain('realnvp-cond', 5.7),
    flowTrain('nice', 4.832),
    flowSample('realnvp', 7.34),
    flowSample('nice', 6.291),
  ];
}

const ms = (r: CaseResult['transfuse'] | null | undefined): string => (!r ? '—' : isOk(r) ? `${r.medianMs.toFixed(r.medianMs < 100 ? 1 : 0)} ms` : `error: ${r.error.split('\n')[0].slice(0, 80)}`);

/**
 * Markdown: case, Transfuse and PyTorch medians (same run), their time ratio, the ratio of CPU
 * time per step (steadier than wall time while other processes share the cores), Transfuse GFLOP/s.
 */
export function formatModelTable(results: readonly CaseResult[]): string {
  const rows = results.map((r) => {
    const both = isOk(r.transfuse) && isOk(r.torch) ? [r.transfuse, r.torch] : null;
    const ratio = both ? `${(both[0].medianMs / both[1].medianMs).toFixed(1)}x` : '—';
    const cpuRatio = both && both[0].cpuMs && both[1].cpuMs ? `${(both[0].cpuMs / both[1].cpuMs).toFixed(1)}x` : '—';
    const gflops = isOk(r.transfuse) ? r.transfuse.throughput.toFixed(2) : '—';
    return `| ${r.name} | ${ms(r.transfuse)} | ${ms(r.torch)} | ${ratio} | ${cpuRatio} | ${gflops} |`;
  });
  return [
    '| case | Transfuse (median) | PyTorch (median, same run; its device is on the peer line) | time ratio | CPU-time ratio | Transfuse GFLOP/s |',
    '|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}
