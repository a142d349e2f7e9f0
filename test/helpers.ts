// Shared helpers for the ava tests in test/unit/. The tests are compiled to build-test/ (tsconfig.test.json) and
// exercise the compiled package in dist/, the same files a user of `showo2` gets.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { WeightFile } from 'showo2';

/** The repository root (build-test/helpers.js lives one level below it). */
export const repoRoot = path.resolve(__dirname, '..');
export const fixturesDir = path.join(repoRoot, 'test', 'fixtures', 'weights');
export const cliPath = path.join(repoRoot, 'dist', 'cli.js');
/**
 * The addon this repository's tests load: the file SHOWO2_BINARY names when it is set (tools/sanitize.sh ava points it
 * at the AddressSanitizer build), else the from-source build (`npm run build:native`), as lib/native.ts decides.
 */
export const repoAddonPath = process.env.SHOWO2_BINARY
  ? path.resolve(process.env.SHOWO2_BINARY)
  : path.join(repoRoot, 'build', 'Release', 'showo2.node');
/** Why lib/native.ts picks repoAddonPath (runtimeInfo().variantReason). */
export const repoAddonReason = process.env.SHOWO2_BINARY
  ? `SHOWO2_BINARY=${process.env.SHOWO2_BINARY}`
  : 'a from-source build is present (npm run build:native)';

/**
 * The factor for the tests' own time limits (deadlock watchdogs, kills of hung child processes, "this must not take
 * as long as the work" bounds): SHOWO2_TEST_TIME_SCALE, at least 1, default 1. tools/sanitize.sh ava sets it, since
 * everything runs several times slower under AddressSanitizer.
 */
export const timeScale = Math.max(1, Number(process.env.SHOWO2_TEST_TIME_SCALE) || 1);

/** The directories tempDir made, removed by one exit listener (one listener each would trip MaxListenersExceededWarning). */
const tempDirs: string[] = [];
process.on('exit', () => {
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});

/** A fresh temporary directory, removed when the test process exits. */
export function tempDir(prefix = 'showo2-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

export interface SafetensorsTensor {
  name: string;
  dtype: string;
  shape: number[];
  data: ArrayBufferView;
}

/** The raw parts of a safetensors file, so tests can corrupt any of them. */
export interface SafetensorsParts {
  header: Record<string, unknown>;
  data: Buffer;
}

/** Lays out tensors back to back, as the reference writer does (no padding needed for these tests). */
export function safetensorsParts(tensors: SafetensorsTensor[], metadata?: Record<string, string>): SafetensorsParts {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const t of tensors) {
    const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  return { header, data: Buffer.concat(chunks) };
}

/** Serialises parts: u64 little-endian header length, the JSON header padded with spaces to 8 bytes, the data. */
export function encodeSafetensors(parts: SafetensorsParts, headerLengthOverride?: bigint): Buffer {
  let json = JSON.stringify(parts.header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(headerLengthOverride ?? BigInt(Buffer.byteLength(json)));
  return Buffer.concat([prefix, Buffer.from(json), parts.data]);
}

export function writeSafetensors(file: string, tensors: SafetensorsTensor[], metadata?: Record<string, string>): string {
  fs.writeFileSync(file, encodeSafetensors(safetensorsParts(tensors, metadata)));
  return file;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Written to the child's stdin, which is then closed (stdin is empty without it). */
  input?: string;
}

/** Runs `node <args>` and collects its output. */
export function runNode(args: string[], options: RunOptions = {}): Promise<RunResult> {
  return runCommand(process.execPath, args, options);
}

/** Runs a program (found on the PATH of `options.env`, else of this process) and collects its output. */
export function runCommand(file: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: options.cwd ?? repoRoot,
      env: options.env ?? process.env,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    if (options.input !== undefined) child.stdin!.end(options.input);
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Runs the `showo2` CLI. */
export function runCli(args: string[], options: RunOptions = {}): Promise<RunResult> {
  return runNode([cliPath, ...args], options);
}

/**
 * A directory whose node_modules/showo2 links to this repository, so `import 'showo2'` / `require('showo2')` there
 * resolve through package.json "exports" exactly as in a user's project.
 */
export function consumerProject(): string {
  const dir = tempDir('showo2-consumer-');
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(repoRoot, path.join(dir, 'node_modules', 'showo2'), 'dir');
  return dir;
}

/** Every tensor of a safetensors fixture, by name (reference outputs written by tools/fixtures/). */
export async function readAllTensors(file: string): Promise<Record<string, ArrayLike<number>>> {
  const weights = await WeightFile.open(file);
  try {
    const out: Record<string, ArrayLike<number>> = {};
    for (const { name } of weights.tensors) out[name] = (await weights.read(name)).data as ArrayLike<number>;
    return out;
  } finally {
    weights.dispose();
  }
}

/**
 * Watches the event loop with a timer of `intervalMs`: `stop()` ends it and gives how many ticks fired and the
 * longest gap between two (a task that held the JS thread shows up as one long gap).
 */
export function watchEventLoop(intervalMs: number): { stop(): { ticks: number; longestGap: number } } {
  let ticks = 0;
  let longestGap = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    longestGap = Math.max(longestGap, now - last);
    last = now;
    ticks++;
  }, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      return { ticks, longestGap };
    },
  };
}
