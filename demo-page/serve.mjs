// A static file server for the pages (WebGPU needs a secure context: http://localhost is one).
// It serves the checkout, so that importmap.html can load the packages' dist/ folders as they are.
//   node demo-page/serve.mjs [port]      then open http://localhost:PORT/demo-page/
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.map': 'application/json', '.safetensors': 'application/octet-stream' };

/** Serves demo-page/ on `port` (0: any free one); resolves to the server once it listens. */
export function serveDemoPage(port = 0) {
  const server = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '');
    if (path === '/') {
      res.writeHead(302, { location: '/demo-page/' }).end();
      return;
    }
    try {
      const body = await readFile(join(root, path.endsWith('/') ? `${path}index.html` : path));
      res.writeHead(200, { 'content-type': TYPES[extname(path)] ?? 'text/html' });
      res.end(body);
    } catch {
      res.writeHead(404).end(`not found: ${path}`);
    }
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const server = await serveDemoPage(Number(process.argv[2] ?? 8080));
  console.log(`Transfuse demo page: http://localhost:${server.address().port}/demo-page/ (import-map example: /demo-page/importmap.html)`);
}
