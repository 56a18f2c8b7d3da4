/** Finding an adapter in Node (Dawn): the lavapipe path and its environment variables. */
import { describe, expect, test } from 'vitest';
import { acquireDevice } from '@transfuse/core';

describe('adapter selection in Node', () => {
  test('no adapter: the error says what was tried and how to get one', async () => {
    const saved = process.env.TRANSFUSE_LAVAPIPE_ICD;
    process.env.TRANSFUSE_LAVAPIPE_ICD = '/nonexistent/lvp_icd.json';
    try {
      await expect(acquireDevice({ backend: 'lavapipe' })).rejects.toThrow(
        /No WebGPU adapter found \(backend 'lavapipe'\)\. Tried:\n {2}- vulkan \(lavapipe\): TRANSFUSE_LAVAPIPE_ICD=\/nonexistent\/lvp_icd\.json does not exist[\s\S]*How to get a WebGPU adapter:[\s\S]*npm run setup/,
      );
    } finally {
      if (saved === undefined) delete process.env.TRANSFUSE_LAVAPIPE_ICD;
      else process.env.TRANSFUSE_LAVAPIPE_ICD = saved;
    }
    await expect(acquireDevice({ backend: 'metal' as never })).rejects.toThrow(/Unknown backend 'metal'/);
  });

  test("the 'browser' backend without navigator.gpu says which Chromium flags give one", async () => {
    await expect(acquireDevice({ backend: 'browser' })).rejects.toThrow(/navigator\.gpu: absent[\s\S]*--enable-unsafe-webgpu/);
  });
});
