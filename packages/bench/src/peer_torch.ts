/**
 * PyTorch on the CPU as a peer for the model cases: `torch_peer.py` in a child process (Debian's
 * /usr/bin/python3 with python3-torch, OpenBLAS's OpenMP build, 2 threads), driven one JSON line
 * per request, so that the runner alternates it with Transfuse exactly as it does tfjs.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import type { Side } from './types.js';

export const TORCH_PYTHON = process.env.TRANSFUSE_TORCH_PYTHON ?? '/usr/bin/python3';
const OPENBLAS_DIR = '/usr/lib/x86_64-linux-gnu/openblas-openmp';
const SCRIPT = fileURLToPath(new URL('../torch_peer.py', import.meta.url));
export const TORCH_HOWTO = 'install it with `apt-get install -y python3-torch libopenblas0-openmp` (Debian), or point TRANSFUSE_TORCH_PYTHON at a python3 that imports torch';

interface Reply {
  ok: boolean;
  error?: string;
  label?: string;
  cpuMs?: number;
}

export interface TorchPeer {
  /** e.g. "PyTorch 1.13.1, 2 threads, OpenBLAS". */
  label: string;
  /** Builds the case named `key` in the script and runs its first (untimed) step. */
  side(key: string): Promise<{ side: Side; wait: () => Promise<number | void> }>;
  close(): void;
}

/** Starts the PyTorch peer, or says why it cannot. */
export async function loadTorch(): Promise<TorchPeer | { error: string }> {
  if (!existsSync(TORCH_PYTHON)) return { error: `${TORCH_PYTHON} not found; ${TORCH_HOWTO}` };
  // Passive OpenMP waits: spinning threads would count as CPU time while the machine is shared.
  const env: NodeJS.ProcessEnv = { OMP_WAIT_POLICY: 'PASSIVE', ...process.env, TRANSFUSE_TORCH_THREADS: process.env.TRANSFUSE_TORCH_THREADS ?? '2' };
  if (existsSync(OPENBLAS_DIR)) env.LD_LIBRARY_PATH = [OPENBLAS_DIR, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':');
  const child: ChildProcessWithoutNullStreams = spawn(TORCH_PYTHON, [SCRIPT], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const lines = createInterface({ input: child.stdout });
  const waiting: ((r: Reply) => void)[] = [];
  let exited: string | null = null;
  const fail = (why: string) => {
    exited = why;
    for (const w of waiting.splice(0)) w({ ok: false, error: why });
  };
  lines.on('line', (l) => {
    let r: Reply;
    try {
      r = JSON.parse(l) as Reply;
    } catch {
      r = { ok: false, error: `unexpected output from ${SCRIPT}: ${l.slice(0, 200)}` };
    }
    waiting.shift()?.(r);
  });
  child.on('error', (e) => fail(`could not start ${TORCH_PYTHON}: ${e.message}`));
  child.on('exit', (code) => fail(`${TORCH_PYTHON} ${SCRIPT} exited (code ${code}): ${stderr.trim().split('\n').slice(-3).join(' | ')}`));
  const ask = (cmd: object): Promise<Reply> =>
    exited ? Promise.resolve({ ok: false, error: exited }) : new Promise((resolve) => {
      waiting.push(resolve);
      child.stdin.write(`${JSON.stringify(cmd)}\n`);
    });
  const must = async (cmd: object): Promise<Reply> => {
    const r = await ask(cmd);
    if (!r.ok) throw new Error(r.error ?? 'PyTorch peer failed');
    return r;
  };

  const hello = await ask({ cmd: 'hello' });
  if (!hello.ok) {
    child.kill();
    const missing = /No module named 'torch'/.test(hello.error ?? '') || /ModuleNotFoundError/.test(stderr);
    return { error: missing ? `PyTorch is not installed for ${TORCH_PYTHON}; ${TORCH_HOWTO}` : (hello.error ?? 'PyTorch peer failed') };
  }
  return {
    label: hello.label ?? 'PyTorch',
    async side(key) {
      await must({ cmd: 'setup', case: key });
      let pending: Promise<Reply> = Promise.resolve({ ok: true });
      return {
        side: {
          step: () => {
            pending = ask({ cmd: 'step' });
          },
          dispose: () => void ask({ cmd: 'free' }),
        },
        wait: async () => {
          const r = await pending;
          if (!r.ok) throw new Error(r.error ?? 'PyTorch step failed');
          return r.cpuMs;
        },
      };
    },
    close: () => {
      child.stdin.end();
      child.kill();
    },
  };
}
