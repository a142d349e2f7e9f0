// Concurrency and aborts on the tiny model: 32 concurrent requests (answer, answerStream, generateImages, chat turns,
// streams stopped early) on one model and across two, with AbortSignals fired at seeded random times, then a model
// disposed under load. The scenario (test/scenarios/concurrency.ts) runs in a child process so that this test also
// sees the process exit by itself, with code 0, and in time (no deadlock, no native thread or handle left behind).
// What counts as a pass for each request is written there; here every request's verdict must be a pass.
import { spawn } from 'node:child_process';
import * as path from 'node:path';

import test from 'ava';

import type { ScenarioReport } from '../scenarios/concurrency.js';
import { repoRoot, timeScale } from '../helpers.js';

const scenario = path.join(repoRoot, 'build-test', 'scenarios', 'concurrency.js');

interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the scenario; a child that has not exited after `limitMs` is killed (and `signal` says so). */
function runScenario(seed: number, limitMs: number): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [scenario, String(seed)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

for (const seed of [1, 7]) {
  test(`32 concurrent requests on two models with random aborts all settle correctly, and the process exits (seed ${seed})`, async (t) => {
    t.timeout(170_000 * timeScale);
    const child = await runScenario(seed, 150_000 * timeScale);
    t.is(child.signal, null, `the scenario was killed (a deadlock or a hang at exit); stderr: ${child.stderr}`);
    t.is(child.code, 0, child.stderr);
    const report = JSON.parse(child.stdout.trim()) as ScenarioReport;
    t.deepEqual(report.failures, []);
    t.is(report.requests, 32);
    t.is(report.completed + report.abortedWithResult + report.cancelled, 32);
    // Unaborted requests always complete; about 15% of the requests are aborted before they start.
    t.true(report.completed >= 10, JSON.stringify(report));
    t.true(report.abortedWithResult + report.cancelled >= 4, JSON.stringify(report));
    // Every request on the model disposed under load settled, each with a result or a typed error.
    t.is(report.disposedPhase.settled, 8);
    t.is(report.disposedPhase.results + report.disposedPhase.errors.length, 8);
    t.true(report.disposedPhase.errors.every((code) => code === 'ERR_DISPOSED'), report.disposedPhase.errors.join());
  });
}
