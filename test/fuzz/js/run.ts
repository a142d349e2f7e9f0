// The JavaScript fuzzer's command line (tools/fuzz.sh js ... calls it; docs/RELIABILITY.md, "Fuzzing the JavaScript
// and WebAssembly parsers"):
//
//   node build-test/fuzz/js/run.js [--runs N] [--seconds S] [--seed N] [--timeout S] [--rss-limit-mb M] [target...]
//   node build-test/fuzz/js/run.js --list
//   node build-test/fuzz/js/run.js --reproduce FILE target
//
// Each target runs in a worker thread; the main thread is the watchdog. A finding (an exception the target did not
// expect, a broken invariant, an input running longer than --timeout, the process over --rss-limit-mb) saves the input
// to build-fuzz/js-findings/<target>/<kind>-<sha1> and the run exits 1 after the remaining targets. The corpus grows
// in build-fuzz/js-corpus/<target>/ and later runs start from it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

import { repoRoot } from '../../helpers.js';
import { attachSharedState, createSharedState, currentInput, fuzzLoop, sha1, type FuzzTarget, type LoopStats } from './engine.js';
import { TARGETS } from './targets/index.js';

interface WorkerInput {
  target: string;
  runs: number;
  seconds: number;
  seed: number;
  corpusDir: string;
  buffers: [SharedArrayBuffer, SharedArrayBuffer];
}

type WorkerMessage =
  | { type: 'stats'; stats: LoopStats }
  | { type: 'done'; stats: LoopStats }
  | { type: 'finding'; message: string; stack: string };

const buildDir = path.resolve(repoRoot, process.env.SHOWO2_FUZZ_BUILD_DIR ?? 'build-fuzz');

function targetByName(name: string): FuzzTarget {
  const target = TARGETS.find((t) => t.name === name);
  if (!target) throw new Error(`unknown fuzz target '${name}' (known: ${TARGETS.map((t) => t.name).join(', ')})`);
  return target;
}

function describe(err: unknown): { message: string; stack: string } {
  if (!(err instanceof Error)) return { message: String(err), stack: String(err) };
  let stack = err.stack ?? err.message;
  let cause = (err as { cause?: unknown }).cause;
  while (cause instanceof Error) {
    stack += `\nCaused by: ${cause.stack ?? cause.message}`;
    cause = (cause as { cause?: unknown }).cause;
  }
  return { message: `${err.name}: ${err.message}`, stack };
}

async function workerMain(input: WorkerInput): Promise<void> {
  const target = targetByName(input.target);
  const state = attachSharedState(input.buffers);
  const post = (m: WorkerMessage): void => parentPort!.postMessage(m);
  await target.setup?.();
  try {
    const stats = await fuzzLoop(target, state, {
      runs: input.runs,
      seconds: input.seconds,
      seed: input.seed,
      corpusDir: input.corpusDir,
      onStats: (s) => post({ type: 'stats', stats: s }),
    });
    post({ type: 'done', stats });
  } catch (err) {
    post({ type: 'finding', ...describe(err) });
  }
}

interface Options {
  runs: number;
  seconds: number;
  seed: number;
  timeout: number;
  rssLimitMb: number;
  targets: string[];
  reproduce?: string;
  list: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { runs: 0, seconds: 0, seed: Date.now() % 2 ** 31, timeout: 30, rssLimitMb: 2560, targets: [], list: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v < 0) throw new Error(`${arg} needs a non-negative number, got '${argv[i]}'`);
      return v;
    };
    if (arg === '--runs') o.runs = value();
    else if (arg === '--seconds') o.seconds = value();
    else if (arg === '--seed') o.seed = value();
    else if (arg === '--timeout') o.timeout = value();
    else if (arg === '--rss-limit-mb') o.rssLimitMb = value();
    else if (arg === '--reproduce') o.reproduce = argv[++i];
    else if (arg === '--list') o.list = true;
    else if (arg.startsWith('-')) throw new Error(`unknown option ${arg}`);
    else o.targets.push(arg);
  }
  if (o.targets.length === 0) o.targets = TARGETS.map((t) => t.name);
  for (const name of o.targets) targetByName(name);
  if (o.runs === 0 && o.seconds === 0 && !o.reproduce && !o.list) o.runs = 1_000_000;
  return o;
}

interface TargetResult {
  name: string;
  execs: number;
  seconds: number;
  corpus: number;
  outcomes: number;
  finding?: string;
}

function saveFinding(target: string, kind: string, input: Uint8Array): string {
  const dir = path.join(buildDir, 'js-findings', target);
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${kind}-${sha1(input)}`);
  fs.writeFileSync(file, input);
  return path.relative(repoRoot, file);
}

function runTarget(name: string, o: Options): Promise<TargetResult> {
  const maxLength = targetByName(name).maxLength;
  const shared = createSharedState(maxLength);
  const input: WorkerInput = {
    target: name,
    runs: o.runs,
    seconds: o.seconds,
    seed: o.seed,
    corpusDir: path.join(buildDir, 'js-corpus', name),
    buffers: shared.buffers,
  };
  const started = Date.now();
  return new Promise((resolve) => {
    const worker = new Worker(__filename, { workerData: input, stdout: false, stderr: false });
    let last: LoopStats = { execs: 0, corpus: 0, outcomes: 0, elapsedMs: 0 };
    let settled = false;
    let lastExecs = -1;
    let lastProgress = Date.now();
    const finish = (finding?: string): void => {
      if (settled) return;
      settled = true;
      clearInterval(watchdog);
      void worker.terminate();
      const execs = Math.max(last.execs, Atomics.load(shared.counters, 0));
      resolve({ name, execs, seconds: (Date.now() - started) / 1000, corpus: last.corpus, outcomes: last.outcomes, ...(finding ? { finding } : {}) });
    };
    const fail = (kind: string, message: string): void => {
      const file = saveFinding(name, kind, currentInput(shared));
      console.error(`fuzz-js ${name}: ${kind.toUpperCase()} ${message}\n  input saved to ${file}\n  reproduce: node build-test/fuzz/js/run.js --reproduce ${file} ${name}`);
      finish(`${kind}: ${file}`);
    };
    const watchdog = setInterval(() => {
      const execs = Atomics.load(shared.counters, 0);
      if (execs !== lastExecs) {
        lastExecs = execs;
        lastProgress = Date.now();
      } else if (Date.now() - lastProgress > o.timeout * 1000) {
        fail('timeout', `one input ran longer than ${o.timeout} s`);
        return;
      }
      const rssMb = process.memoryUsage.rss() / 2 ** 20;
      if (rssMb > o.rssLimitMb) fail('oom', `the process uses ${rssMb.toFixed(0)} MB, over --rss-limit-mb ${o.rssLimitMb}`);
    }, 250);
    worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'stats') {
        last = m.stats;
        const rate = m.stats.execs / Math.max(m.stats.elapsedMs / 1000, 1e-3);
        console.log(`fuzz-js ${name}: ${m.stats.execs} execs, ${rate.toFixed(0)}/s, corpus ${m.stats.corpus}, outcomes ${m.stats.outcomes}`);
      } else if (m.type === 'done') {
        last = m.stats;
        finish();
      } else {
        fail('crash', `${m.message}\n${m.stack.replace(/^/gm, '    ')}`);
      }
    });
    // The worker died (a V8 heap limit, an uncaught exception outside the loop): the input it was on is the finding.
    worker.on('error', (err) => fail('crash', `worker died: ${describe(err).stack}`));
    worker.on('exit', (code) => {
      if (!settled) fail('crash', `worker exited with code ${code} before finishing`);
    });
  });
}

async function reproduce(file: string, name: string): Promise<number> {
  const target = targetByName(name);
  await target.setup?.();
  const data = new Uint8Array(fs.readFileSync(file));
  try {
    console.log(`outcome: ${await target.run(data)}`);
    return 0;
  } catch (err) {
    console.error(describe(err).stack);
    return 1;
  }
}

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  if (o.list) {
    for (const t of TARGETS) console.log(`${t.name.padEnd(16)} ${t.description}`);
    return 0;
  }
  if (o.reproduce) {
    if (o.targets.length !== 1) throw new Error('--reproduce FILE needs exactly one target');
    return reproduce(o.reproduce, o.targets[0]!);
  }
  const limit = [o.runs ? `${o.runs} runs` : '', o.seconds ? `${o.seconds} s` : ''].filter(Boolean).join(' or ');
  console.log(`fuzz-js: ${o.targets.join(', ')}; ${limit} each; seed ${o.seed}; timeout ${o.timeout} s; rss limit ${o.rssLimitMb} MB`);
  const results: TargetResult[] = [];
  for (const name of o.targets) results.push(await runTarget(name, o));
  console.log('\ntarget            execs  exec/s  corpus  outcomes  result');
  for (const r of results) {
    const rate = (r.execs / Math.max(r.seconds, 1e-3)).toFixed(0);
    console.log(
      `${r.name.padEnd(16)} ${String(r.execs).padStart(8)} ${rate.padStart(7)} ${String(r.corpus).padStart(7)} ${String(r.outcomes).padStart(9)}  ${r.finding ?? 'ok'}`,
    );
  }
  return results.some((r) => r.finding) ? 1 : 0;
}

if (isMainThread) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(`fuzz-js: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(2);
    },
  );
} else {
  void workerMain(workerData as WorkerInput);
}
