// The full evaluation of the bundled demo model through the SDK (issue 10): generation on the held-out captions over
// several seeds, understanding on the held-out images, and VAE reconstruction PSNR, scored by the pixel-level
// detector of test/demo/scenes.ts.
//
//   npx tsc -p tsconfig.json && npx tsc -p tsconfig.test.json
//   node build-test/demo/evaluate.js [--model models/demo] [--seeds 3] [--steps 50] [--guidance 5]
//                                    [--json results.json] [--images DIR]
//
// Prints one line per failure and a summary; exits 1 when a target of the issue is missed (colour >= 90%,
// shape >= 80%, answers >= 90%, PSNR >= 30 dB).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

import { decodeImage, encodePng, ShowO2Model, WanVae, type WanVaeConfig } from 'showo2';

import { loadEvalSet, normaliseAnswer, psnr, rate, scoreGeneration, type GenerationScore } from './scenes.js';

const repoRoot = path.resolve(__dirname, '..', '..');

export const TARGETS = { colour: 0.9, shape: 0.8, answers: 0.9, psnrDb: 30 };

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', default: path.join(repoRoot, 'models', 'demo') },
      seeds: { type: 'string', default: '3' },
      steps: { type: 'string', default: '50' },
      guidance: { type: 'string', default: '5' },
      json: { type: 'string' },
      images: { type: 'string' },
    },
  });
  const modelDir = values.model!;
  const seeds = Number(values.seeds);
  const steps = Number(values.steps);
  const guidanceScale = Number(values.guidance);
  const set = loadEvalSet(path.join(repoRoot, 'test', 'fixtures', 'demo'));
  if (values.images) fs.mkdirSync(values.images, { recursive: true });

  const started = Date.now();
  const model = await ShowO2Model.load(modelDir);
  try {
    // generation: every held-out caption with seeds 0..seeds-1
    const generation: GenerationScore[] = [];
    let genMs = 0;
    for (let seed = 0; seed < seeds; seed++) {
      const prompts = set.generation.map((g) => g.caption);
      const t0 = Date.now();
      const { images } = await model.generateImages({ prompt: prompts, seed, steps, guidanceScale });
      genMs += Date.now() - t0;
      images.forEach((image, i) => {
        const score = scoreGeneration(image, set.generation[i]!, seed, set);
        generation.push(score);
        if (values.images) fs.writeFileSync(path.join(values.images, `gen-${seed}-${i.toString().padStart(2, '0')}.png`), encodePng(image));
        if (!score.colourRight || !score.shapeRight) {
          const d = score.detected;
          console.log(`generation miss (seed ${seed}): "${score.caption}" -> ${d.colour} ${d.shape} (fill ${d.fill.toFixed(2)})`);
        }
      });
    }

    // understanding: every question about every held-out image
    const answers: { image: string; question: string; expected: string; got: string; right: boolean; kind: string }[] = [];
    const u0 = Date.now();
    for (const item of set.understanding) {
      const image = decodeImage(fs.readFileSync(path.join(set.dir, item.image)));
      for (const q of item.questions) {
        const { text } = await model.answer({ image, question: q.question, maxTokens: 24 });
        const right = normaliseAnswer(text) === normaliseAnswer(q.answer);
        answers.push({ image: item.image, question: q.question, expected: q.answer, got: text, right, kind: q.kind });
        if (!right) console.log(`answer miss: ${item.image} "${q.question}" expected "${q.answer}", got "${text}"`);
      }
    }
    const undMs = Date.now() - u0;

    // VAE: reconstruction of the held-out images
    const config = JSON.parse(fs.readFileSync(path.join(modelDir, 'config.json'), 'utf8')) as { vae_config: WanVaeConfig };
    const vae = await WanVae.load(path.join(modelDir, 'vae.safetensors'), { config: config.vae_config });
    const psnrs: number[] = [];
    try {
      for (const item of set.understanding) {
        const image = decodeImage(fs.readFileSync(path.join(set.dir, item.image)));
        const { frames } = await vae.decode(await vae.encode(image));
        psnrs.push(psnr(frames[0]!, image));
      }
    } finally {
      vae.dispose();
    }

    const byKind: Record<string, number> = {};
    for (const kind of new Set(answers.map((a) => a.kind))) byKind[kind] = rate(answers.filter((a) => a.kind === kind), (a) => a.right);
    const summary = {
      model: modelDir,
      generation: {
        cases: generation.length,
        captions: set.generation.length,
        seeds,
        steps,
        guidanceScale,
        colour: rate(generation, (g) => g.colourRight),
        shape: rate(generation, (g) => g.shapeRight),
        background: rate(generation, (g) => g.backgroundRight),
        position: rate(generation, (g) => g.positionRight),
        msPerImage: Math.round(genMs / generation.length),
      },
      understanding: {
        questions: answers.length,
        images: set.understanding.length,
        right: rate(answers, (a) => a.right),
        byKind,
        msPerAnswer: Math.round(undMs / answers.length),
      },
      vae: {
        images: psnrs.length,
        meanPsnrDb: psnrs.reduce((a, b) => a + b, 0) / psnrs.length,
        minPsnrDb: Math.min(...psnrs),
      },
      seconds: (Date.now() - started) / 1000,
    };
    console.log(JSON.stringify(summary, null, 2));
    if (values.json) fs.writeFileSync(values.json, JSON.stringify({ summary, generation, answers, psnrs }, null, 1) + '\n');
    const pass =
      summary.generation.colour >= TARGETS.colour &&
      summary.generation.shape >= TARGETS.shape &&
      summary.understanding.right >= TARGETS.answers &&
      summary.vae.meanPsnrDb >= TARGETS.psnrDb;
    console.log(pass ? 'all targets met' : 'TARGETS MISSED');
    process.exitCode = pass ? 0 : 1;
  } finally {
    model.dispose();
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 2;
  });
}
