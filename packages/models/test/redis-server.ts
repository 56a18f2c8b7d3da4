/** A private redis-server for a test: 127.0.0.1 only, a free port picked at random, a password, no files. */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';

export interface TestRedis {
  /** redis://:PASSWORD@127.0.0.1:PORT */
  url: string;
  host: '127.0.0.1';
  port: number;
  password: string;
  stop(): Promise<void>;
}

/** A port the OS calls free right now (redis-server then binds it; a lost race is retried). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function start(port: number, password: string): Promise<ChildProcess | null> {
  return new Promise((resolve, reject) => {
    const args = ['--bind', '127.0.0.1', '--port', String(port), '--requirepass', password, '--save', '', '--appendonly', 'no', '--protected-mode', 'yes'];
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.once('error', (e) => reject(new Error(`cannot start redis-server (${e.message}); install it: apt-get install redis-server`)));
    child.stdout!.on('data', (d: Buffer) => {
      log += d.toString();
      if (log.includes('Ready to accept connections')) resolve(child);
    });
    child.once('exit', () => (log.includes('Address already in use') ? resolve(null) : reject(new Error(`redis-server exited:\n${log}`))));
  });
}

export async function startRedis(): Promise<TestRedis> {
  const password = randomBytes(12).toString('hex');
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const child = await start(port, password);
    if (!child) continue;
    return {
      url: `redis://:${password}@127.0.0.1:${port}`,
      host: '127.0.0.1',
      port,
      password,
      stop: () =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        }),
    };
  }
  throw new Error('redis-server: no free port on 127.0.0.1 after 5 tries');
}
