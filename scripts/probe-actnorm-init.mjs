// node scripts/probe-actnorm-init.mjs [DATA]: does the data-dependent ActNorm init alone (one training-mode forward of
// the conditional flow of the cpu preset, no optimizer step) move the held-out USPS NLL, from a batch of 64
// images (n_t = 100) and of 1,024? (EXPERIMENTS.md, issue 18: why flows learn nothing from 80 images.)
import { init, noGrad, tensor } from '@transfuse/core';
import { uspsBenchmarkSplit, prepareDigits } from '@transfuse/models/node';
import { Flow, flowPreset, imageFlowData, evalBitsPerDim, selectRows, dequantize } from '@transfuse/models';
await init();
const split = uspsBenchmarkSplit(process.argv[2] ?? '../shared/data', 0);
const train = imageFlowData(prepareDigits(split.raw, split.train, { size: 16 }));
const held = imageFlowData(prepareDigits(split.raw, split.test, { size: 16, n: 200, seed: 1 }));
for (const nBatch of [64, 1024]) {
  for (const seed of [0, 1]) {
    const flow = new Flow({ ...flowPreset('small-cond', { dim: 256, condition: { numClasses: 10, embedding: 10 } }), seed });
    flow.eval();
    const before = (await evalBitsPerDim(flow, held, { seed: 0 })).natsPerDim;
    const b = selectRows(train, Int32Array.from({ length: nBatch }, (_, i) => (i * 7 + seed * 13) % train.n));
    flow.train();
    noGrad(() => flow.nll(tensor(dequantize(b.x, 5), [b.n, 256]), { labels: tensor(b.labels) }).dispose());
    flow.eval();
    const after = (await evalBitsPerDim(flow, held, { seed: 0 })).natsPerDim;
    console.log(`init batch ${nBatch}, flow seed ${seed}: held-out NLL ${before.toFixed(3)} -> ${after.toFixed(3)} nats/dim after the ActNorm init alone`);
    flow.dispose();
  }
}
process.exit(0);
