#!/usr/bin/env bash
# Installs the packed packages into a fresh project outside the checkout, as another project
# would, then type-checks consumer files under `strict` without skipLibCheck (a Node one and a
# browser one) and runs the README's 15-line example in Node. npm reads the local cache first.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
checkout=$PWD
work=$(mktemp -d "${TMPDIR:-/tmp}/transfuse-consumer.XXXXXX")
trap 'rm -rf "$work"' EXIT

npx tsc -b
for p in kernels core models; do npm pack --silent --pack-destination "$work" -w "packages/$p" >/dev/null; done
ts_version=$(node -p "require('./node_modules/typescript/package.json').version")
types_node=$(node -p "require('./node_modules/@types/node/package.json').version")

cd "$work"
cat > package.json <<JSON
{
  "name": "transfuse-consumer",
  "private": true,
  "type": "module",
  "dependencies": {
    "@transfuse/kernels": "file:./transfuse-kernels-0.1.0.tgz",
    "@transfuse/core": "file:./transfuse-core-0.1.0.tgz",
    "@transfuse/models": "file:./transfuse-models-0.1.0.tgz"
  },
  "devDependencies": { "typescript": "$ts_version", "@types/node": "$types_node" }
}
JSON
npm install --prefer-offline --no-audit --no-fund --ignore-scripts --loglevel=error

# The README's example, verbatim: the block under "## A 15-line example".
awk '/^## A 15-line example/{on=1; next} on && /^```ts/{code=1; next} code && /^```/{exit} code' "$checkout/README.md" > example.ts
[ -s example.ts ] || { echo "check-consumer: no \`\`\`ts block under '## A 15-line example' in README.md" >&2; exit 1; }

cat > node-entries.ts <<'TS'
import { encodeSafetensors, decodeSafetensors, runtime, type Tensor } from '@transfuse/core';
import { saveCheckpoint, loadSafetensors } from '@transfuse/core/node';
import { UNet2D, encodePng } from '@transfuse/models';
import { savePngGrid, loadDigits } from '@transfuse/models/node';
export const used = [encodeSafetensors, decodeSafetensors, saveCheckpoint, loadSafetensors, UNet2D, encodePng, savePngGrid, loadDigits];
export const device = (): GPUDevice => runtime().device;
export const shape = (t: Tensor): readonly number[] => t.shape;
TS
cat > tsconfig.json <<'JSON'
{
  "compilerOptions": {
    "target": "ES2022", "module": "NodeNext", "moduleResolution": "NodeNext", "lib": ["ES2023"],
    "types": ["node"], "strict": true, "skipLibCheck": false, "outDir": "out"
  },
  "files": ["example.ts", "node-entries.ts"]
}
JSON
# A web app: bundler resolution with the 'browser' condition, DOM types, no Node types at all.
cat > browser.ts <<'TS'
import { init, tensor, ProgressBar, encodeSafetensors } from '@transfuse/core';
import { UNet2D, imageGrid, encodePng } from '@transfuse/models';
export async function run(canvas: HTMLCanvasElement): Promise<GPUDevice> {
  const rt = await init();
  const bar = new ProgressBar(10, { stream: { write: (line: string) => (canvas.title = line) } });
  bar.done();
  return [tensor([1]), UNet2D, imageGrid, encodePng, encodeSafetensors].length > 0 ? rt.device : rt.device;
}
TS
cat > tsconfig.browser.json <<'JSON'
{
  "compilerOptions": {
    "target": "ES2022", "module": "ESNext", "moduleResolution": "Bundler", "customConditions": ["browser"],
    "lib": ["ES2023", "DOM"], "types": [], "strict": true, "skipLibCheck": false, "noEmit": true
  },
  "files": ["browser.ts"]
}
JSON
npx tsc -p tsconfig.json
npx tsc -p tsconfig.browser.json
echo "check-consumer: strict type checks passed (Node and browser consumers, skipLibCheck off)"
node out/example.js
echo "check-consumer: the README example ran in $work"
