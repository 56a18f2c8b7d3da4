/**
 * The `--queue` URL: redis://[:PASSWORD@]HOST:PORT[/DB] (rediss:// for TLS), checked before any
 * connection, and turned into the connection options BullMQ passes to its Redis client.
 */
import { UsageError } from '../cli/flags.js';

export interface RedisConnection {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  tls?: object;
  /** BullMQ's workers block on Redis; they must not give up on a command after a few retries. */
  maxRetriesPerRequest: null;
}

/** `cmd` names the command in the error (e.g. 'worker'). */
export function parseRedisUrl(cmd: string, raw: string): RedisConnection {
  const bad = (why: string): never => {
    throw new UsageError(`${cmd}: --queue must be redis://[:PASSWORD@]HOST:PORT[/DB]; ${why} (got '${raw.replace(/\/\/([^@/]*)@/, '//***@')}')`);
  };
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return bad('not a URL');
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') bad(`the scheme is '${u.protocol.replace(/:$/, '')}'`);
  if (!u.hostname) bad('no host');
  if (!u.port) bad('no port (Redis listens on 6379 by default: say so)');
  const db = u.pathname === '' || u.pathname === '/' ? 0 : Number(u.pathname.slice(1));
  if (!Number.isInteger(db) || db < 0 || db > 15 || !/^\/?\d*$/.test(u.pathname)) bad(`the database '${u.pathname.slice(1)}' is not a number from 0 to 15`);
  if (u.search || u.hash) bad('query strings and fragments are not read');
  return {
    host: u.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: Number(u.port),
    db,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
    maxRetriesPerRequest: null,
  };
}
