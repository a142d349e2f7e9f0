// Faults that need a process of their own (an environment variable read once by the addon, or a fault that could
// kill the process), for test/unit/faults.test.ts.
//
//   node build-test/scenarios/faults-child.js MODE MODEL_DIR
//
// Prints one JSON line describing what happened; exits 0 when the scenario ran to its end.
// - `oom`: with SHOWO2_TEST_ALLOC_LIMIT set, a large generation and a large VAE decode fail; then small ones work.
// - `truncate-after-load`: with SHOWO2_NO_MMAP=1, the checkpoint is truncated (and then deleted) after the load; the
//   model keeps answering, identically.
// - `truncate-during-load`: with SHOWO2_NO_MMAP=1, copies of the model are truncated 0 to 40 ms after their load
//   starts: each load succeeds (and the model answers) or fails with a typed error.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { ShowO2Error, ShowO2Model } from 'showo2';
import { tinyVaePath } from './tiny-model.js';

function describe(err: unknown): { name: string; code?: string; message: string } {
  if (err instanceof ShowO2Error) return { name: err.name, code: err.code, message: err.message };
  return { name: 'untyped', message: String(err) };
}

async function attempt<T>(call: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: ReturnType<typeof describe> }> {
  try {
    return { ok: true, value: await call() };
  } catch (err) {
    return { ok: false, error: describe(err) };
  }
}

async function main(): Promise<void> {
  const [mode, modelDir] = process.argv.slice(2) as [string, string];
  const out: Record<string, unknown> = { mode };
  if (mode === 'truncate-during-load') {
    const outcomes: unknown[] = [];
    for (const delay of [0, 2, 5, 10, 20, 40]) {
      const dir = `${modelDir}-${delay}`;
      fs.cpSync(modelDir, dir, { recursive: true });
      const weights = path.join(dir, 'pytorch_model.bin');
      const loading = attempt(() => ShowO2Model.load(dir, { vaePath: tinyVaePath }));
      await new Promise((resolve) => setTimeout(resolve, delay));
      fs.truncateSync(weights, Math.floor(fs.statSync(weights).size / 2));
      const loaded = await loading;
      if (loaded.ok) {
        const answer = await attempt(() => loaded.value.answer({ question: 'hello', maxTokens: 3 }));
        loaded.value.dispose();
        outcomes.push({ delay, loaded: true, answered: answer.ok });
      } else outcomes.push({ delay, loaded: false, error: loaded.error });
      fs.rmSync(dir, { recursive: true, force: true });
    }
    out.outcomes = outcomes;
    process.stdout.write(`${JSON.stringify(out)}\n`);
    return;
  }
  const model = await ShowO2Model.load(modelDir, { vaePath: tinyVaePath });
  if (mode === 'oom') {
    out.largeGeneration = await attempt(() => model.generateImages({ prompt: 'x', width: 432, height: 432, steps: 2, seed: 1 }));
    const latents = { data: new Float32Array(16 * 54 * 54).fill(0.1), shape: [1, 16, 1, 54, 54] };
    out.largeDecode = await attempt(() => model.vae.decode(latents));
    const small = await attempt(() => model.generateImages({ prompt: 'x', width: 32, height: 32, steps: 2, seed: 1 }));
    out.smallGeneration = small.ok ? { ok: true, width: small.value.images[0]!.width } : small;
    const answer = await attempt(() => model.answer({ question: 'hi', maxTokens: 3 }));
    out.answer = answer.ok ? { ok: true, tokens: answer.value.tokens.length } : answer;
  } else if (mode === 'truncate-after-load') {
    const before = await model.answer({ question: 'hello', maxTokens: 6 });
    const weights = path.join(modelDir, 'pytorch_model.bin');
    fs.truncateSync(weights, 1000);
    const truncated = await attempt(() => model.answer({ question: 'hello', maxTokens: 6 }));
    fs.rmSync(weights);
    const deleted = await attempt(() => model.generateImages({ prompt: 'x', width: 32, height: 32, steps: 2, seed: 1 }));
    out.same = truncated.ok && truncated.value.tokens.join() === before.tokens.join();
    out.truncated = truncated.ok ? { ok: true } : truncated;
    out.deleted = deleted.ok ? { ok: true } : deleted;
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
  model.dispose();
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 2;
});
