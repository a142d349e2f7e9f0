/**
 * A lock file shared between processes, so that two Node processes (two services, or a service and the `showo2 pull`
 * CLI) resolving the same model never write the same partial download at once.
 *
 * The lock is a file created with O_EXCL holding its owner (pid, host, a random token). The owner touches it while it
 * works; a waiter takes it over when the owner is gone (same host, pid no longer alive) or has not touched it for
 * `staleMs` (another host on a shared file system, or a frozen process). Taking over a stale lock has a small race
 * (two waiters may both judge it stale within a few milliseconds); the download that it protects checks size and hash
 * before anything is renamed into place, so the worst outcome of that race is a wasted download, never a corrupt
 * file.
 *
 * @module
 * @internal
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** @internal */
export interface FileLockOptions {
  /** Rejects the wait with the signal's reason when it aborts. */
  signal?: AbortSignal | undefined;
  /** A lock not touched for this long is stale. Defaults to 60 s. */
  staleMs?: number;
  /** How often a waiter checks the lock. Defaults to 250 ms. */
  pollMs?: number;
  /** Called on every check while another process holds the lock. */
  onWait?: () => void;
}

interface LockOwner {
  pid: number;
  host: string;
  token: string;
}

/**
 * Runs `work` while holding the lock file `lockPath` (created, with its directory, if needed; removed afterwards).
 * @internal
 */
export async function withFileLock<T>(lockPath: string, options: FileLockOptions, work: () => Promise<T>): Promise<T> {
  const staleMs = options.staleMs ?? 60_000;
  const owner: LockOwner = { pid: process.pid, host: os.hostname(), token: randomBytes(8).toString('hex') };
  await acquire(lockPath, owner, staleMs, options);
  // Touch the lock while working, so waiters on other hosts can tell a slow download from a dead one.
  const heartbeat = setInterval(() => {
    const now = new Date();
    fs.utimes(lockPath, now, now).catch(() => undefined);
  }, Math.max(10, Math.floor(staleMs / 3)));
  heartbeat.unref();
  try {
    return await work();
  } finally {
    clearInterval(heartbeat);
    // Remove it only if it is still ours (a waiter may have judged us stale and taken over).
    if ((await readOwner(lockPath))?.token === owner.token) await fs.rm(lockPath, { force: true });
  }
}

async function acquire(lockPath: string, owner: LockOwner, staleMs: number, options: FileLockOptions): Promise<void> {
  await fs.mkdir(path.dirname(lockPath), { recursive: true });
  for (;;) {
    options.signal?.throwIfAborted();
    try {
      await fs.writeFile(lockPath, JSON.stringify(owner), { flag: 'wx' });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = await readOwner(lockPath);
    if (await isStale(lockPath, holder, staleMs)) {
      // Re-read just before removing: only remove the lock judged stale, not a fresh one that replaced it meanwhile.
      const again = await readOwner(lockPath);
      if (again?.token === holder?.token) await fs.rm(lockPath, { force: true });
      continue;
    }
    options.onWait?.();
    await delay(options.pollMs ?? 250, options.signal);
  }
}

async function readOwner(lockPath: string): Promise<LockOwner | undefined> {
  try {
    const parsed = JSON.parse(await fs.readFile(lockPath, 'utf8')) as Partial<LockOwner>;
    if (typeof parsed.pid === 'number' && typeof parsed.host === 'string' && typeof parsed.token === 'string') {
      return parsed as LockOwner;
    }
  } catch {
    // Missing, or caught between create and write, or not ours: judged by its age alone.
  }
  return undefined;
}

async function isStale(lockPath: string, holder: LockOwner | undefined, staleMs: number): Promise<boolean> {
  if (holder && holder.host === os.hostname() && !isAlive(holder.pid)) return true;
  const stat = await fs.stat(lockPath).catch(() => undefined);
  if (!stat) return false; // released meanwhile: the next attempt creates it
  return Date.now() - stat.mtimeMs > staleMs;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by another user
  }
}

function delay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
