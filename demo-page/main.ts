/**
 * The product's job in a browser tab: load a pre-trained class-conditional digit U-Net from
 * safetensors, fine-tune it on a few hundred USPS-style digits with the class embedding frozen
 * (Tian & Shen's shared-embedding transfer), and draw class-conditional samples before and after.
 * `window.demo` holds the outcome for the CI check (scripts/check-demo-page.mjs).
 */
import { decodeSafetensors, init, noGrad, tensor, type Tensor } from '@transfuse/core';
import { NoiseSchedule, UNet2D, conditionalTransferModel, diffusionLoss, imageGrid, sampleImages, trainDiffusion, type ImageSet, type UNet2DConfig } from '@transfuse/models';
import { uspsStyleDigits } from './usps-style.js';

interface DemoResult {
  state: 'running' | 'done' | 'failed';
  error?: string;
  adapter?: string;
  steps?: number;
  trainLosses: [number, number][];
  evalLossBefore?: number;
  evalLossAfter?: number;
  embeddingUnchanged?: boolean;
  fineTuneSeconds?: number;
}

const result: DemoResult = { state: 'running', trainLosses: [] };
(window as unknown as { demo: DemoResult }).demo = result;

const params = new URLSearchParams(location.search);
const STEPS = Number(params.get('steps') ?? 80);
const TARGET_DIGITS = 300;
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = (text: string) => ($('status').textContent = text);

function drawGrid(canvasId: string, images: Float32Array, n: number): void {
  const g = imageGrid(images, n, 16, 16, 10, [-1, 1], 3);
  const canvas = $<HTMLCanvasElement>(canvasId);
  canvas.width = g.width;
  canvas.height = g.height;
  const rgba = new ImageData(g.width, g.height);
  g.pixels.forEach((v, i) => rgba.data.set([v, v, v, 255], 4 * i));
  canvas.getContext('2d')!.putImageData(rgba, 0, 0);
}

/** The mean diffusion loss on a fixed batch (fixed images, timesteps and noise): comparable across models. */
async function evalLoss(model: UNet2D, schedule: NoiseSchedule, data: ImageSet): Promise<number> {
  const n = data.n;
  const t = Int32Array.from({ length: n }, (_, i) => Math.floor(((i + 0.5) / n) * schedule.steps));
  const loss = noGrad(() => diffusionLoss(model, schedule, tensor(data.images, [n, 1, 16, 16]), tensor(data.labels!), tensor(t), 12345));
  const value = await loss.item();
  loss.dispose();
  return value;
}

async function embeddingBits(model: UNet2D): Promise<Float32Array[]> {
  return Promise.all(model.class_embedding!.parameters().map((p: Tensor) => p.data() as Promise<Float32Array>));
}

async function main(): Promise<void> {
  status('Finding a WebGPU adapter...');
  const rt = await init();
  result.adapter = rt.acquired.backend;
  $('adapter').textContent = result.adapter;

  status('Loading the pre-trained model...');
  const response = await fetch('public/mnist16-conditional.safetensors');
  if (!response.ok) throw new Error(`public/mnist16-conditional.safetensors: HTTP ${response.status}`);
  const file = decodeSafetensors(new Uint8Array(await response.arrayBuffer()), 'mnist16-conditional.safetensors');
  const config = JSON.parse(file.metadata['transfuse.unet']) as UNet2DConfig;
  const schedule = new NoiseSchedule(JSON.parse(file.metadata['transfuse.schedule']));
  const source = new UNet2D(config);
  source.loadStateDict(file.tensors);
  $('model').textContent = `${file.tensors.size} tensors, ${file.metadata['transfuse.trained']}`;

  const target = uspsStyleDigits(TARGET_DIGITS, 1);
  const held = uspsStyleDigits(100, 2);
  drawGrid('data', target.images, 20);

  const labels = Int32Array.from({ length: 20 }, (_, i) => i % 10);
  const sample = (model: UNet2D) => sampleImages(model, schedule, { n: labels.length, labels }, { sampler: 'ddim', steps: 20, seed: 7 });
  status('Sampling from the pre-trained model...');
  drawGrid('before', await sample(source), labels.length);

  const model = conditionalTransferModel(source, 'finetune', 3);
  const frozen = await embeddingBits(model);
  result.evalLossBefore = await evalLoss(model, schedule, held);
  status(`Fine-tuning on ${TARGET_DIGITS} USPS-style digits (class embedding frozen)...`);
  const bar = $<HTMLProgressElement>('progress');
  bar.max = STEPS;
  result.steps = STEPS;
  const run = await trainDiffusion(model, schedule, target, {
    steps: STEPS,
    batchSize: 16,
    lr: 1e-3,
    logEvery: 2,
    label: null,
    seed: 4,
    onLog: (step, loss) => {
      result.trainLosses.push([step, loss]);
      bar.value = step;
      $('loss').textContent = `step ${step}/${STEPS}, loss ${loss.toFixed(4)}`;
    },
  });
  result.fineTuneSeconds = run.seconds;
  result.evalLossAfter = await evalLoss(model, schedule, held);
  const after = await embeddingBits(model);
  result.embeddingUnchanged = frozen.every((a, k) => a.length === after[k].length && a.every((v, i) => Object.is(v, after[k][i])));
  $('eval').textContent = `held-out loss ${result.evalLossBefore.toFixed(4)} → ${result.evalLossAfter.toFixed(4)}; ` +
    `class embedding ${result.embeddingUnchanged ? 'unchanged (frozen)' : 'CHANGED'}; fine-tuning took ${run.seconds.toFixed(1)} s`;

  status('Sampling from the fine-tuned model...');
  drawGrid('after', await sample(model), labels.length);
  result.state = 'done';
  status('Done.');
}

main().catch((e: unknown) => {
  result.state = 'failed';
  result.error = e instanceof Error ? `${e.message}\n${e.stack ?? ''}` : String(e);
  status(`Failed: ${result.error}`);
});
