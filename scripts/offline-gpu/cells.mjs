// node cells.mjs RESULTS DATA SEEDS NT_LIST NS_LIST [SOURCE_CAP|-] [TARGET_CHECK_EPOCHS|-] [TARGET_EMA|-] [TARGET_CAP]:
// the cpu preset of mnist-usps-conditional, diffusion, on these lists (and this source cap, target check
// interval, target EMA decay and target cap, as `--source-cap`, `--target-check-epochs`, `--target-ema` and
// `--target-cap` give them; '-' keeps the preset's setting).
import { init } from '@transfuse/core';
import { MNIST_USPS_PRESETS, runMnistUsps, withBudgets } from '@transfuse/models/node';
const [out, dataDir, seeds, nts, nss, capArg, checkArg, emaArg, targetCapArg] = process.argv.slice(2);
const given = (arg) => (arg === undefined || arg === '-' ? undefined : Number(arg));
const [sourceCap, targetCheckEpochs, targetEma, targetCap] = [given(capArg), given(checkArg), given(emaArg), given(targetCapArg)];
const list = (s) => s.split(',').map((v) => (v === 'all' ? v : Number(v)));
const rt = await init();
console.log('adapter:', rt.acquired.backend, rt.acquired.adapter.info.description);
const { flow, ...cpu } = withBudgets(MNIST_USPS_PRESETS.cpu, { sourceCap, targetCap, targetCheckEpochs, targetEma });
const preset = { ...cpu, seeds: list(seeds), ntList: list(nts), nsList: list(nss) };
const t0 = Date.now();
const log = (m) => console.log(`[${((Date.now() - t0) / 1000).toFixed(0)} s] ${m}`);
await runMnistUsps({ preset, presetName: `cpu (seeds ${seeds}, n_t ${nts}, n_s ${nss}, diffusion${sourceCap ? `, source cap ${sourceCap}` : ''}${targetCheckEpochs ? `, target checks every ${targetCheckEpochs} epochs at most` : ''}${targetEma ? `, target EMA ${targetEma}` : ''}${targetCap ? `, target cap ${targetCap}` : ''})`, conditional: true, dataDir, out, log });
log('finished');
process.exit(0);
