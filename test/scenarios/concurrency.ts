// The concurrency-and-abort scenario of test/unit/concurrency.test.ts, run in a child process so the test can check
// that the process exits by itself (no native thread, handle or pending promise left behind) with code 0.
//
// Usage: node build-test/scenarios/concurrency.js SEED
// Prints one JSON line (ScenarioReport) on stdout. Exits with code 0 when the scenario ran to the end (the parent
// judges the report), 2 on an unexpected exception, 3 when the requests did not all settle in time (a deadlock).
//
// 1. Two models are loaded from the tiny fixture. 32 requests (answer, answerStream, generateImages, two-turn chats,
//    streams stopped early), drawn from a PRNG seeded by SEED, each aimed at one of the two models, first run one by
//    one with no signal: their serial results.
// 2. The same 32 requests run all at once, about half of them with an AbortSignal that is already aborted or fires
//    after a random (seeded) delay. Every promise must settle: with a result equal bit for bit to the serial one, or
//    (aborted requests only) with finishReason 'abort' and a prefix of the serial tokens (answers and chats), or with
//    a CancelledError (image generation).
// 3. Eight more requests go to the second model, which is disposed while they run: each must settle with a result or
//    a typed ShowO2Error, and the first model must still give its serial results afterwards.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';

import { CancelledError, ShowO2Error, ShowO2Model, type GenerationResult, type ImageGenerationResult } from 'showo2';
import { timeScale } from '../helpers.js';
import { photoPath, seededRandom, tinyVaePath, writeTinyModel } from './tiny-model.js';

type Kind = 'answer' | 'stream' | 'image' | 'chat' | 'stream-break';

interface Request {
  id: number;
  kind: Kind;
  model: 0 | 1;
  abort: 'none' | 'before' | 'timer';
  delayMs: number;
  question: string;
  image: boolean;
  maxTokens: number;
  temperature: number;
  seed: number;
  steps: number;
  size: number;
  guidanceScale: number;
}

/** What one request produced, in a form that compares bit for bit. */
interface Outcome {
  /** Per answer (a chat has two): the tokens, finishReason and text. */
  answers?: GenerationResult[];
  /** sha256 of the generated latents and pixels. */
  digest?: string;
}

/** The JSON line the parent reads. */
export interface ScenarioReport {
  requests: number;
  completed: number;
  abortedWithResult: number;
  cancelled: number;
  disposedPhase: { settled: number; results: number; errors: string[] };
  failures: string[];
}

const QUESTIONS = ['What is in the image?', 'Describe it.', 'hi', 'What colour is the sky?', 'Count to three.'];

function makeRequests(seed: number): Request[] {
  const random = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const kinds: Kind[] = ['answer', 'stream', 'image', 'chat', 'stream-break'];
  const out: Request[] = [];
  for (let id = 0; id < 32; id++) {
    const r = random();
    out.push({
      id,
      kind: kinds[id % kinds.length]!,
      model: random() < 0.5 ? 0 : 1,
      abort: r < 0.15 ? 'before' : r < 0.55 ? 'timer' : 'none',
      delayMs: Math.floor(random() * 60),
      question: pick(QUESTIONS),
      image: random() < 0.4,
      maxTokens: 2 + Math.floor(random() * 10),
      temperature: random() < 0.5 ? 0 : 0.8,
      seed: Math.floor(random() * 1000),
      steps: 2 + Math.floor(random() * 3),
      size: pick([32, 48, 64]),
      guidanceScale: pick([0, 3, 5]),
    });
  }
  return out;
}

async function run(model: ShowO2Model, req: Request, signal?: AbortSignal): Promise<Outcome> {
  const turn = {
    question: req.question,
    maxTokens: req.maxTokens,
    temperature: req.temperature,
    seed: req.seed,
    ...(req.image ? { image: photoPath } : {}),
    ...(signal ? { signal } : {}),
  };
  switch (req.kind) {
    case 'answer':
      return { answers: [await model.answer(turn)] };
    case 'stream': {
      const stream = model.answerStream(turn);
      let text = '';
      for (;;) {
        const step = await stream.next();
        if (step.done) {
          if (step.value.text !== text) throw new Error(`request ${req.id}: the streamed pieces do not add up to the text`);
          return { answers: [step.value] };
        }
        text += step.value;
      }
    }
    case 'stream-break': {
      // Stop after the first piece: the generator's cleanup must release the chat and leave the model usable.
      for await (const piece of model.answerStream(turn)) {
        return { digest: `first piece ${JSON.stringify(piece)}` };
      }
      return { digest: 'no piece' };
    }
    case 'chat': {
      const chat = model.createChat();
      try {
        const first = await chat.ask(turn);
        if (first.finishReason === 'abort') return { answers: [first] };
        const { image: _image, ...text } = turn;
        const second = await chat.ask({ ...text, question: 'And then?' });
        return { answers: [first, second] };
      } finally {
        chat.dispose();
      }
    }
    case 'image': {
      const result: ImageGenerationResult = await model.generateImages({
        prompt: req.question,
        width: req.size,
        height: req.size,
        steps: req.steps,
        seed: req.seed,
        guidanceScale: req.guidanceScale,
        ...(signal ? { signal } : {}),
      });
      const hash = createHash('sha256');
      hash.update(Buffer.from(result.latents.data.buffer, result.latents.data.byteOffset, result.latents.data.byteLength));
      for (const image of result.images) hash.update(image.data);
      return { digest: hash.digest('hex') };
    }
  }
}

const same = (a: GenerationResult, b: GenerationResult) =>
  a.text === b.text && a.finishReason === b.finishReason && a.tokens.join() === b.tokens.join() &&
  a.usage.promptTokens === b.usage.promptTokens;

/** An aborted answer: finishReason 'abort' and a prefix of the serial tokens, or the serial answer itself. */
function fitsAbort(got: GenerationResult, serial: GenerationResult): boolean {
  if (same(got, serial)) return true;
  return got.finishReason === 'abort' && got.tokens.length <= serial.tokens.length && got.tokens.every((t, i) => t === serial.tokens[i]);
}

function judge(req: Request, serial: Outcome, settled: PromiseSettledResult<Outcome>, aborted: boolean, report: ScenarioReport): void {
  const where = `request ${req.id} (${req.kind} on model ${req.model}, abort ${req.abort})`;
  if (settled.status === 'rejected') {
    const err = settled.reason as unknown;
    if (aborted && err instanceof CancelledError && err.code === 'ERR_CANCELLED' && req.kind === 'image') {
      report.cancelled += 1;
      return;
    }
    report.failures.push(`${where}: rejected with ${err instanceof ShowO2Error ? err.code : ''} ${String(err)}`);
    return;
  }
  const got = settled.value;
  if (req.kind === 'stream-break') {
    // A stopped stream's first piece is the serial first piece, unless the signal ended it before any piece.
    if (got.digest !== serial.digest && !(aborted && got.digest === 'no piece')) {
      report.failures.push(`${where}: ${got.digest} but serially ${serial.digest}`);
    } else if (got.digest === serial.digest) report.completed += 1;
    else report.abortedWithResult += 1;
    return;
  }
  if (req.kind === 'image') {
    if (got.digest !== serial.digest) report.failures.push(`${where}: the images differ from the serial run`);
    else report.completed += 1;
    return;
  }
  const serialAnswers = serial.answers!;
  const answers = got.answers!;
  const exact = answers.length === serialAnswers.length && answers.every((a, i) => same(a, serialAnswers[i]!));
  if (exact) {
    report.completed += 1;
    return;
  }
  // Only an aborted request may differ, and only by stopping early: every turn before the last equal, the last one
  // a prefix ending in 'abort'.
  const last = answers.length - 1;
  const prefixOk =
    aborted &&
    answers.length <= serialAnswers.length &&
    answers.every((a, i) => (i < last ? same(a, serialAnswers[i]!) : fitsAbort(a, serialAnswers[i]!))) &&
    answers[last]!.finishReason === 'abort';
  if (prefixOk) report.abortedWithResult += 1;
  else report.failures.push(`${where}: ${JSON.stringify(answers)} but serially ${JSON.stringify(serialAnswers)}`);
}

async function main(): Promise<void> {
  const seed = Number(process.argv[2] ?? 1);
  const dir = writeTinyModel();
  const models = [await ShowO2Model.load(dir, { vaePath: tinyVaePath }), await ShowO2Model.load(dir, { vaePath: tinyVaePath })] as const;
  const requests = makeRequests(seed);
  const report: ScenarioReport = {
    requests: requests.length,
    completed: 0,
    abortedWithResult: 0,
    cancelled: 0,
    disposedPhase: { settled: 0, results: 0, errors: [] },
    failures: [],
  };

  // 1. Serial results.
  const serial: Outcome[] = [];
  for (const req of requests) serial.push(await run(models[req.model], req));

  // 2. All at once, with aborts.
  const aborted = new Set<number>();
  const timers: NodeJS.Timeout[] = [];
  const promises = requests.map((req) => {
    if (req.abort === 'none') return run(models[req.model], req);
    const controller = new AbortController();
    const fire = () => {
      aborted.add(req.id);
      controller.abort();
    };
    if (req.abort === 'before') fire();
    else timers.push(setTimeout(fire, req.delayMs));
    return run(models[req.model], req, controller.signal);
  });
  const settled = await Promise.allSettled(promises);
  for (const t of timers) clearTimeout(t);
  requests.forEach((req, i) => judge(req, serial[i]!, settled[i]!, aborted.has(req.id), report));

  // 3. Dispose the second model under load.
  const victims = requests.filter((r) => r.kind !== 'stream-break').slice(0, 8);
  const inFlight = victims.map((req) => run(models[1], req));
  await new Promise((resolve) => setTimeout(resolve, 5 + (seed % 20)));
  models[1].dispose();
  for (const s of await Promise.allSettled(inFlight)) {
    report.disposedPhase.settled += 1;
    if (s.status === 'fulfilled') report.disposedPhase.results += 1;
    else if (s.reason instanceof ShowO2Error) report.disposedPhase.errors.push(s.reason.code);
    else report.failures.push(`dispose under load: an untyped rejection ${String(s.reason)}`);
  }
  // The first model is untouched by all of this.
  for (const [i, req] of requests.entries()) {
    if (req.model !== 0 || req.kind === 'stream-break') continue;
    const again = await run(models[0], req);
    if (JSON.stringify(again) !== JSON.stringify(serial[i])) report.failures.push(`request ${req.id}: differs after the dispose phase`);
  }
  models[0].dispose();
  fs.rmSync(dir, { recursive: true, force: true });
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

const deadlockMs = 120_000 * timeScale;
const deadlock = setTimeout(() => {
  process.stderr.write(`the requests did not settle within ${deadlockMs / 1000} s\n`);
  process.exit(3);
}, deadlockMs);
deadlock.unref();
main().then(
  () => clearTimeout(deadlock),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 2;
  },
);
