/**
 * `showo2 interleave`: one answer that mixes text and images (mixed-modality generation, spec §8.4). The text streams
 * to stdout as it is written, with a line for each image; the images and a Markdown file of the whole answer are
 * written to the output directory.
 *
 * @module
 * @internal
 */
import * as path from 'node:path';

import { encodePng } from '../image.js';
import type { InterleavedGenerationOptions } from '../interleaved-generation.js';
import { generating, SAMPLING_OPTIONS, samplingOptions, seedValue } from './generate.js';
import { intValue, printJson, stringList, stringValue, textSamplingValues, UsageError, writeFile, type Command } from './common.js';
import { LOAD_OPTIONS, loadModel } from './load-model.js';
import type { ProgressTask } from './progress.js';

const { 'truncate-prompt': _unused, ...IMAGE_OPTIONS } = SAMPLING_OPTIONS;

export const interleave: Command = {
  summary: 'Write an answer that mixes text and images (mixed-modality generation) into a directory',
  usage: 'interleave PROMPT [--model DIR|REPO] [-o DIR] [options]',
  positionals: [],
  optionalPositionals: ['prompt'],
  cancellable: true,
  options: {
    prompt: { type: 'string', value: 'TEXT', description: 'The opening text, as a flag. Defaults to the PROMPT argument.' },
    'max-images': { type: 'string', value: 'N', description: 'The most images in the answer, 0 to 16. Defaults to 4.' },
    'start-with-image': { type: 'boolean', description: 'Begin the answer with an image. Defaults to off.' },
    'max-tokens': { type: 'string', value: 'N', description: 'The most tokens to sample, 1 to 100000. Defaults to 512.' },
    temperature: { type: 'string', value: 'T', description: 'Text sampling temperature, >= 0; 0 is greedy. Defaults to 1.' },
    'top-p': { type: 'string', value: 'P', description: 'Nucleus sampling threshold, in (0, 1]. Defaults to 1 (off).' },
    'top-k': { type: 'string', value: 'K', description: 'Sample only from the K most likely tokens; 0 turns it off. Defaults to 0.' },
    'logit-bias': {
      type: 'string',
      multiple: true,
      value: 'ID=BIAS',
      description: 'Add BIAS to token ID\'s score before sampling (-inf bans it); repeatable. Defaults to none.',
    },
    ...IMAGE_OPTIONS,
    'reference-quirks': {
      type: 'boolean',
      description: 'Behave as the reference script: text sees earlier images at TIME(0) (spec §11.5). Defaults to off.',
    },
    output: {
      type: 'string',
      short: 'o',
      value: 'DIR',
      description: 'Directory for image-0.png, image-1.png, ... and answer.md. Defaults to showo2-interleave-{seed}.',
    },
    ...LOAD_OPTIONS,
  },
  details: `The model writes text and decides where to draw; each image is generated with the answer so far as its
context. Needs a checkpoint fine-tuned for mixed-modality generation: the released Show-o2 checkpoints and the
bundled demo model were not trained for it and rarely draw on their own.
--seed seeds the text sampler; image k uses seed + k.

Examples:
  showo2 interleave "Mixed-modality generation. A day at the beach." --model ./show-o2-mixed -o beach/
  showo2 interleave "A recipe for pancakes." --model ./show-o2-mixed --max-images 2 --start-with-image --seed 3
  showo2 interleave "A walk in the park." --model ./tiny --temperature 0 --logit-bias 151652=1.4 --max-images 2`,
  async run(ctx, args, values) {
    const promptFlag = stringValue(values, 'prompt');
    if (args.length > 0 && promptFlag !== undefined) throw new UsageError('Give the prompt as the PROMPT argument or --prompt, not both');
    const prompt = args[0] ?? promptFlag;
    if (prompt === undefined) throw new UsageError('Missing the prompt: showo2 interleave "A day at the beach." -o beach/');
    const seed = seedValue(values);
    const { width, height, steps, guidanceScale, shift, solver } = samplingOptions(values);
    const options: InterleavedGenerationOptions = { prompt, seed };
    Object.assign(options, Object.fromEntries(Object.entries({ width, height, steps, guidanceScale, shift, solver }).filter(([, v]) => v !== undefined)));
    const maxImages = intValue(values, 'max-images', 0, 16);
    if (maxImages !== undefined) options.maxImages = maxImages;
    if (values['start-with-image'] === true) options.startWithImage = true;
    Object.assign(options, textSamplingValues(values, 100_000));
    if (values['reference-quirks'] === true) options.referenceQuirks = true;
    const bias: Record<number, number> = {};
    for (const item of stringList(values, 'logit-bias')) {
      const m = /^\s*(\d+)\s*=\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?|-inf)\s*$/i.exec(item);
      if (!m) throw new UsageError(`Expected --logit-bias ID=BIAS (e.g. 151652=2.5 or 151645=-inf) but received "${item}"`);
      bias[Number(m[1])] = m[2]!.toLowerCase() === '-inf' ? -Infinity : Number(m[2]);
    }
    if (Object.keys(bias).length > 0) options.logitBias = bias;
    if (options.startWithImage && options.maxImages === 0) {
      throw new UsageError('--start-with-image needs --max-images of at least 1');
    }
    const dir = stringValue(values, 'output') ?? `showo2-interleave-${seed}`;

    const model = await loadModel(ctx, values);
    try {
      let task: ProgressTask | undefined;
      let atLineStart = true;
      const markdown: string[] = [];
      const images: { index: number; path: string; width: number; height: number }[] = [];
      const stream = model.generateInterleavedStream({
        ...options,
        signal: ctx.signal,
        onStep: (p) => {
          task ??= ctx.progress.start(`image ${p.imageIndex}: denoising`);
          task.update(p.step, p.totalSteps);
        },
      });
      const result = await generating(ctx, async () => {
        for (;;) {
          const step = await stream.next();
          if (step.done) return step.value;
          const event = step.value;
          if (event.type === 'text') {
            markdown.push(event.text);
            if (!ctx.json) ctx.io.write(event.text);
            atLineStart = event.text.endsWith('\n');
            continue;
          }
          task?.done();
          task = undefined;
          const file = path.join(dir, `image-${event.index}.png`);
          writeFile(file, encodePng(event.image!));
          images.push({ index: event.index, path: file, width: event.image!.width, height: event.image!.height });
          markdown.push(`\n\n![image ${event.index}](image-${event.index}.png)\n\n`);
          if (!ctx.json) ctx.io.write(`${atLineStart ? '' : '\n'}[image ${event.index}: ${file}]\n`);
          atLineStart = true;
        }
      });
      task?.done();
      const answer = path.join(dir, 'answer.md');
      writeFile(answer, new TextEncoder().encode(`${markdown.join('').trim()}\n`));
      if (ctx.json) {
        printJson(ctx.io, {
          command: 'interleave',
          seed,
          device: model.device,
          finishReason: result.finishReason,
          usage: result.usage,
          text: result.parts.filter((p) => p.type === 'text').map((p) => (p.type === 'text' ? p.text : '')),
          images,
          answer,
        });
      } else {
        if (!atLineStart) ctx.io.write('\n');
        ctx.io.out(`wrote ${answer} (${images.length} image${images.length === 1 ? '' : 's'}; ${result.finishReason})`);
        ctx.io.out(`seed: ${seed}`);
      }
    } finally {
      model.dispose();
    }
  },
};
