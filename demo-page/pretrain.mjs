// Trains the page's starting model: a tiny class-conditional U-Net on MNIST digits at 16x16 (the
// EMA of its weights), written as F32 safetensors with the U-Net config and the noise schedule in
// the metadata. The page fine-tunes it on USPS-style digits. Run from the checkout after `tsc -b`:
//   node demo-page/pretrain.mjs [--steps 1500] [--data DIR]
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { encodeSafetensors, init, shutdown } from '@transfuse/core';
import { NoiseSchedule, UNET_PRESETS, UNet2D, trainDiffusion } from '@transfuse/models';
import { loadDigits, prepareDigits, resolveDataDir } from '@transfuse/models/node';

const { values } = parseArgs({ options: { steps: { type: 'string', default: '1500' }, data: { type: 'string' } } });
const steps = Number(values.steps);
const out = new URL('./public/mnist16-conditional.safetensors', import.meta.url);

await init();
const data = prepareDigits(loadDigits(resolveDataDir(values.data), 'mnist', 'train'), null, { size: 16, n: 20000, seed: 0 });
const config = { ...UNET_PRESETS.tiny, sampleSize: 16, numClassEmbeds: 10, seed: 0 };
const schedule = { steps: 1000, schedule: 'linear' };
const model = new UNet2D(config);
const { ema, losses } = await trainDiffusion(model, new NoiseSchedule(schedule), data, {
  steps,
  batchSize: 32,
  lr: 3e-3,
  warmup: Math.min(50, steps),
  finalLrFraction: 0.1,
  emaDecay: 0.995,
  logEvery: 50,
  label: 'pretrain',
});
ema?.copyTo(model);
const tensors = new Map();
for (const [name, p] of model.stateDict()) tensors.set(name, { dtype: 'F32', shape: [...p.shape], data: await p.data() });
const metadata = {
  format: 'pt',
  'transfuse.unet': JSON.stringify(config),
  'transfuse.schedule': JSON.stringify(schedule),
  'transfuse.trained': `MNIST train, 20000 digits at 16x16, ${steps} steps of batch 32, final loss ${losses.at(-1)?.[1].toFixed(4)}`,
};
writeFileSync(out, encodeSafetensors(tensors, metadata));
console.log(`wrote ${out.pathname} (${tensors.size} tensors)`);
shutdown();
