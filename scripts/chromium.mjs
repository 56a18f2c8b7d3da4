// Debian's Chromium as the tests and the page check start it: headless, WebGPU on (SwiftShader's
// Vulkan on the CPU where there is no GPU), and nothing that reaches the network.
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const CHROMIUM_FLAGS = [
  '--headless=new',
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
