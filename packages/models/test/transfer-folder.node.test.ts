import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { MNIST_USPS_PRESETS } from '../src/experiments/mnist-usps.js';
import { claimTransferFolder, transferSettings } from '../src/experiments/transfer-folder.js';

const cpu = { ...MNIST_USPS_PRESETS.cpu, conditional: true };
const config = (dir: string) => JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));

describe('a transfer results folder: one set of settings, any slice of the grid', () => {
  test('slices of seeds, n_s, n_t and families share a folder; the settings they run under must match', () => {
    const dir = mkdtempSync(join(tmpdir(), 'transfuse-folder-'));
    const diffusionOnly = { ...cpu, flow: undefined, seeds: [0], ntList: [100] };
    claimTransferFolder(dir, 'mnist-usps-conditional', transferSettings(2, diffusionOnly, {}));
    const first = config(dir);
    expect(Object.keys(first.config)).not.toContain('seeds');
    expect(first.config.flow).toBeUndefined();

    // Other seeds, sizes and n_t: the same settings, nothing rewritten.
    claimTransferFolder(dir, 'mnist-usps-conditional', transferSettings(2, { ...diffusionOnly, seeds: [1, 2], nsList: [3000], ntList: ['all'] }, {}));
    expect(config(dir)).toEqual(first);
    // The flows join: their settings are added, the diffusion ones checked.
    claimTransferFolder(dir, 'mnist-usps-conditional', transferSettings(2, { ...cpu, seeds: [2] }, {}));
    expect(config(dir).config.flow).toEqual(JSON.parse(JSON.stringify(cpu.flow)));
    // Flows alone, later: checked against the recorded flow settings.
    claimTransferFolder(dir, 'mnist-usps-conditional', transferSettings(2, { ...cpu, diffusion: undefined }, {}));

    const refused = (p: typeof cpu, what: RegExp, data = {}, name = 'mnist-usps-conditional') =>
      expect(() => claimTransferFolder(dir, name, transferSettings(2, p, data))).toThrow(what);
    refused({ ...cpu, evalN: 500 }, /holds results of a different run \(.*config\.json\): the settings differ[^]*"evalN":1000[^]*"evalN":500/);
    refused({ ...cpu, diffusion: { ...cpu.diffusion!, target: { ...cpu.diffusion!.target, cap: 3000 } } }, /the diffusion settings differ/);
    refused({ ...cpu, flow: { ...cpu.flow!, arms: ['variant'] } }, /the flow settings differ/);
    refused(cpu, /the settings differ/, { classes: [3] });
    refused(cpu, /the settings differ/, { splitSeed: 7 });
    refused(cpu, /the experiments differ/, {}, 'mnist-usps-digit3');
    expect(() => claimTransferFolder(dir, 'mnist-usps-conditional', transferSettings(3, cpu, {}))).toThrow(/the settings differ/);
  });

  test('a folder written with the grid in its config (before slices could merge) takes other slices; key order does not matter', () => {
    const dir = mkdtempSync(join(tmpdir(), 'transfuse-folder-old-'));
    const old = { protocolVersion: 2, ...cpu, flow: undefined, seeds: [0], nsList: [100, 60000], ntList: [100] };
    const reversed = Object.fromEntries(Object.entries(JSON.parse(JSON.stringify(old))).reverse());
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ experiment: 'mnist-usps-conditional', config: reversed }));
    const before = readFileSync(join(dir, 'config.json'), 'utf8');
    claimTransferFolder(dir, 'mnist-usps-conditional', transferSettings(2, { ...cpu, flow: undefined, seeds: [1], ntList: [1000] }, {}));
    expect(readFileSync(join(dir, 'config.json'), 'utf8')).toBe(before);
  });
});
