// node scripts/probe-actnorm-train.mjs [N_TRAIN] [STEPS] [DATA]: a target-only conditional flow (the cpu preset's) trained on
// N_TRAIN USPS images (default 80, as at n_t = 100), validated on the next 20 every 5 steps, with Glow's ActNorm init
// (the first batch) and with trainFlow's actnormInit (up to 1,024 images, prior 256): the kept step and the held-out NLL.
// (EXPERIMENTS.md, issue 18: why flows at n_t = 100 kept their random initialisation, and the init that lets them train.)
import { init } from '@transfuse/core';
import { uspsBenchmarkSplit, prepareDigits } from '@transfuse/models/node';
import { Flow, flowPreset, imageFlowData, evalBitsPerDim, selectRows, trainFlow } from '@transfuse/models';
await init();
const nTrain = Number(process.argv[2] ?? 80);
const steps = Number(process.argv[3] ?? 150);
const split = uspsBenchmarkSplit(process.argv[4] ?? '../shared/data', 0);
const all = imageFlowData(prepareDigits(split.raw, split.train, { size: 16 }));
const held = imageFlowData(prepareDigits(split.raw, split.test, { size: 16, n: 200, seed: 1 }));
const rows = (from, n) => selectRows(all, Int32Array.from({ length: n }, (_, i) => from + i));
const [train, validation] = [rows(0, nTrain), rows(nTrain, 20)];
for (const [name, extra] of [['first batch (Glow)', {}], ['1,024 images, prior 256', { actnormInit: { images: 1024, prior: 256 } }]]) {
  for (const seed of [0, 1]) {
    const flow = new Flow({ ...flowPreset('small-cond', { dim: 256, condition: { numClasses: 10, embedding: 10 } }), seed });
    const r = await trainFlow(flow, train, { steps, batchSize: 64, lr: 1e-3, clipNorm: 1, seed, label: null, validation, validateEvery: 5, validateAtStart: true, ...extra });
    const heldOut = (await evalBitsPerDim(flow, held, { seed: 0 })).natsPerDim;
    const curve = r.validation.history.filter(([s]) => s % 25 === 0 || s <= 10).map(([s, v]) => `${s}:${v.toFixed(2)}`).join(' ');
    console.log(`${name}, n=${nTrain}, seed ${seed}: kept step ${r.validation.bestStep}, held-out NLL ${heldOut.toFixed(3)} nats/dim | validation ${curve}`);
    flow.dispose();
  }
}
process.exit(0);
