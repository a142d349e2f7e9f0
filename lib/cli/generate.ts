/**
 * `showo2 generate` (text to images, written as PNG or JPEG by the output's extension) and `showo2 video` (text or
 * image to an animated PNG).
 *
 * @module
 * @internal
 */
import { randomInt } from 'node:crypto';
import * as path from 'node:path';

import { encodeAnimatedPng } from '../animation.js';
import { DEFAULT_JPEG_QUALITY, encodeImageForPath, encodePng, type RgbImage } from '../image.js';
import type { ShowO2Model } from '../model.js';
import type { GenerationProgress, ImageGenerationOptions } from '../visual-generation.js';
import {
  asFlagError,
  cancelled,
  choiceValue,
  intValue,
  numberValue,
  printJson,
  stringList,
  stringValue,
  UsageError,
  writeFile,
  type Command,
  type CommandContext,
  type OptionSpec,
  type OptionValues,
} from './common.js';
import { LOAD_OPTIONS, loadModel } from './load-model.js';
import type { ProgressTask } from './progress.js';

/** The sampling flags `generate` and `video` share. */
export const SAMPLING_OPTIONS: Record<string, OptionSpec> = {
  width: { type: 'string', value: 'N', description: "Width in pixels, a multiple of 16. Defaults to the model's resolution (432)." },
  height: { type: 'string', value: 'N', description: "Height in pixels, a multiple of 16. Defaults to the model's resolution (432)." },
  steps: { type: 'string', value: 'N', description: 'Time-grid points of the ODE, >= 2 (50 gives 49 steps). Defaults to 50.' },
  guidance: { type: 'string', value: 'G', description: 'Classifier-free guidance scale, >= 0; 0 turns it off. Defaults to 5.' },
  shift: { type: 'string', value: 'S', description: 'Time shift of the step grid, > 0. Defaults to 3.' },
  solver: { type: 'string', value: 'euler|heun', description: 'The ODE solver; heun is 2nd order at twice the cost. Defaults to euler.' },
  seed: { type: 'string', value: 'N', description: 'Seed of the initial noise; the same seed gives the same result. Defaults to a random seed (printed).' },
  'truncate-prompt': {
    type: 'boolean',
    description: "Cut a prompt longer than the model's text budget instead of failing. Defaults to off.",
  },
};

const MAX_SEED = 2 ** 48 - 1;

export function samplingOptions(values: OptionValues): Omit<ImageGenerationOptions, 'prompt' | 'seed'> {
  const options: Omit<ImageGenerationOptions, 'prompt' | 'seed'> = {};
  const width = intValue(values, 'width', 1, 16384);
  if (width !== undefined) options.width = width;
  const height = intValue(values, 'height', 1, 16384);
  if (height !== undefined) options.height = height;
  const steps = intValue(values, 'steps', 2, 10000);
  if (steps !== undefined) options.steps = steps;
  const guidance = numberValue(values, 'guidance', 'a number >= 0', (n) => n >= 0);
  if (guidance !== undefined) options.guidanceScale = guidance;
  const shift = numberValue(values, 'shift', 'a number > 0', (n) => n > 0);
  if (shift !== undefined) options.shift = shift;
  const solver = choiceValue(values, 'solver', ['euler', 'heun'] as const);
  if (solver !== undefined) options.solver = solver;
  if (values['truncate-prompt'] === true) options.truncatePrompt = true;
  return options;
}

/** A prompt as a file-name part: lower case, letters and digits, dashes between words, at most 48 characters. */
export function promptSlug(prompt: string): string {
  const slug = prompt
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return slug.slice(0, 48).replace(/-+$/, '') || 'image';
}

const PLACEHOLDERS = ['seed', 'index', 'prompt'];

/** Fills `{seed}`, `{index}` and `{prompt}` in an output pattern; other `{...}` are usage errors. */
export function fillPattern(pattern: string, fields: { seed: number; index: number; prompt: string }, flag: string): string {
  return pattern.replace(/\{([^{}]*)\}/g, (whole, name: string) => {
    if (!PLACEHOLDERS.includes(name)) {
      throw new UsageError(`Unknown placeholder ${whole} in ${flag}; use {seed}, {index} or {prompt}`);
    }
    return name === 'prompt' ? promptSlug(fields.prompt) : String(fields[name as 'seed' | 'index']);
  });
}

function checkPng(file: string, flag: string): void {
  if (path.extname(file).toLowerCase() !== '.png') throw new UsageError(`Expected a .png file name for ${flag} but received "${file}"`);
}

/** The image formats `generate` writes, by the output's extension. */
const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg'];

function checkImageFile(file: string, flag: string): void {
  if (!IMAGE_EXTENSIONS.includes(path.extname(file).toLowerCase())) {
    throw new UsageError(`Expected a file name ending in .png, .jpg or .jpeg for ${flag} but received "${file}"`);
  }
}

/** The PROMPT arguments, then the --prompt flags. */
function requiredPrompts(values: OptionValues, args: string[]): string[] {
  const prompts = [...args, ...stringList(values, 'prompt')];
  if (prompts.length === 0) throw new UsageError('Missing the prompt: showo2 generate "a red circle on a blue background"');
  return prompts;
}

export function seedValue(values: OptionValues): number {
  // A drawn seed stays short enough to retype.
  return intValue(values, 'seed', 0, MAX_SEED) ?? randomInt(0, 2 ** 31);
}

/**
 * Progress of one generation: the optional first-frame encode, the denoising steps, then the VAE decode (which
 * starts when the last step is reported and ends when the call returns).
 */
function generationProgress(ctx: CommandContext, prefix: string, encoding: boolean) {
  let task: ProgressTask | undefined = encoding ? ctx.progress.start(`${prefix}encoding the first frame`) : undefined;
  let denoising = false;
  return {
    onStep(p: GenerationProgress) {
      if (!denoising) {
        task?.done();
        task = ctx.progress.start(`${prefix}denoising`);
        denoising = true;
      }
      task!.update(p.step, p.totalSteps);
      if (p.step === p.totalSteps) {
        task!.done(`${p.totalSteps} step${p.totalSteps === 1 ? '' : 's'}`);
        task = ctx.progress.start(`${prefix}decoding`);
      }
    },
    done() {
      task?.done();
    },
  };
}

/** Runs a generation, turning an abort into ERR_CANCELLED and the library's option errors into flag errors. */
export async function generating<T>(ctx: CommandContext, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (ctx.signal.aborted) throw cancelled();
    throw asFlagError(err);
  }
}

export const generate: Command = {
  summary: 'Generate images from text prompts and write them as PNG or JPEG files',
  usage: 'generate PROMPT... [--model DIR|REPO] [-o PATTERN] [options]',
  positionals: [],
  optionalPositionals: ['prompt'],
  variadic: true,
  cancellable: true,
  options: {
    prompt: {
      type: 'string',
      multiple: true,
      value: 'TEXT',
      description:
        'What to draw, as a flag; repeat for several prompts, generated as one batch (with the PROMPT arguments). Defaults to the PROMPT arguments.',
    },
    ...SAMPLING_OPTIONS,
    count: {
      type: 'string',
      value: 'N',
      description: 'Images per prompt; run k uses seed + k, so every file is reproducible from the seed in its name. Defaults to 1.',
    },
    output: {
      type: 'string',
      short: 'o',
      value: 'PATTERN',
      description:
        'Where to write each image; {seed}, {index} and {prompt} (a slug) are filled in, and the extension picks the format: ' +
        '.png (lossless) or .jpg/.jpeg. Defaults to showo2-{seed}-{index}.png.',
    },
    quality: {
      type: 'string',
      value: 'N',
      description: `JPEG quality, 1 to 100 (only for a .jpg/.jpeg --output). Defaults to ${DEFAULT_JPEG_QUALITY}.`,
    },
    ...LOAD_OPTIONS,
  },
  details: `Each PROMPT argument (and each --prompt) is one image; quote prompts with spaces.

Examples:
  showo2 generate "a red circle on a blue background" -o out.png
  showo2 generate "a lighthouse at dusk" --model showlab/show-o2-1.5B --seed 7
  showo2 generate "a red fox" "a blue bird" --model ./show-o2-1.5B --vae ./Wan2.1_VAE.pth --count 2 -o "out/{prompt}-{seed}.png"
  showo2 generate "a red fox" --model ./show-o2-1.5B -o "fox-{seed}.jpg" --quality 85`,
  async run(ctx, args, values) {
    const prompts = requiredPrompts(values, args);
    const sampling = samplingOptions(values);
    const count = intValue(values, 'count', 1, 10000) ?? 1;
    const seed = seedValue(values);
    if (seed + count - 1 > MAX_SEED) throw new UsageError(`--seed ${seed} plus --count ${count} runs past the largest seed ${MAX_SEED}`);
    const pattern = stringValue(values, 'output') ?? 'showo2-{seed}-{index}.png';
    checkImageFile(pattern, '--output');
    const quality = intValue(values, 'quality', 1, 100);
    if (quality !== undefined && !/\.jpe?g$/i.test(pattern)) {
      throw new UsageError(`--quality applies to JPEG output only, but --output "${pattern}" writes PNG`);
    }
    // Every file name is known before the model loads, so a pattern that would overwrite its own output fails at once.
    const planned = Array.from({ length: count }, (_, run) =>
      prompts.map((prompt, p) => {
        const index = run * prompts.length + p;
        return { path: fillPattern(pattern, { seed: seed + run, index, prompt }, '--output'), prompt, seed: seed + run, index };
      }),
    );
    const paths = planned.flat().map((x) => path.resolve(x.path));
    if (new Set(paths).size !== paths.length) {
      throw new UsageError(`--output "${pattern}" gives several images the same file name; add {index} (or {seed} or {prompt})`);
    }

    const model = await loadModel(ctx, values);
    try {
      const written: { path: string; prompt: string; seed: number; index: number; width: number; height: number }[] = [];
      const timings = { denoiseMs: 0, decodeMs: 0, totalMs: 0 };
      for (let run = 0; run < count; run++) {
        const prefix = count > 1 ? `run ${run + 1}/${count}: ` : '';
        const progress = generationProgress(ctx, prefix, false);
        const result = await generating(ctx, () =>
          model.generateImages({ ...sampling, prompt: prompts, seed: seed + run, signal: ctx.signal, onStep: progress.onStep }),
        );
        progress.done();
        for (const k of ['denoiseMs', 'decodeMs', 'totalMs'] as const) timings[k] += result.timings[k];
        result.images.forEach((image, p) => {
          const target = planned[run]![p]!;
          writeFile(target.path, encodeImageForPath(target.path, image, quality === undefined ? {} : { quality }, '--output'));
          written.push({ ...target, width: image.width, height: image.height });
          if (!ctx.json) ctx.io.out(`wrote ${target.path}`);
        });
      }
      if (ctx.json) {
        printJson(ctx.io, { command: 'generate', seed, device: model.device, images: written, timings });
      } else {
        ctx.io.out(count > 1 ? `seeds: ${seed} to ${seed + count - 1} (run k used seed + k)` : `seed: ${seed}`);
      }
    } finally {
      model.dispose();
    }
  },
};

export const video: Command = {
  summary: 'Generate a video from a prompt (and optionally a first frame) and write it as an animated PNG',
  usage: 'video PROMPT [--model DIR|REPO] [--image PATH] [-o FILE.png] [options]',
  positionals: [],
  optionalPositionals: ['prompt'],
  cancellable: true,
  options: {
    prompt: { type: 'string', value: 'TEXT', description: 'What happens in the video, as a flag. Defaults to the PROMPT argument.' },
    image: { type: 'string', value: 'PATH', description: 'Image-to-video: the first frame (PNG, JPEG or WebP), held fixed. Defaults to none (text-to-video).' },
    frames: { type: 'string', value: 'N', description: 'Frames, of the form 1 + 4k (1, 5, 9, 13, 17, ...). Defaults to 17.' },
    ...SAMPLING_OPTIONS,
    fps: { type: 'string', value: 'N', description: 'Playback frames per second, 1 to 1000. Defaults to 8.' },
    output: {
      type: 'string',
      short: 'o',
      value: 'FILE.png',
      description: 'The animated PNG to write; {seed} and {prompt} are filled in. Defaults to showo2-video-{seed}.png.',
    },
    'frames-dir': { type: 'string', value: 'DIR', description: 'Also write every frame as DIR/frame-0000.png, ... Defaults to not writing them.' },
    ...LOAD_OPTIONS,
  },
  details: `The released Show-o2 checkpoints were not trained for video; use a video checkpoint for useful results.
An animated PNG plays in every current browser; viewers without APNG support show its first frame.

Examples:
  showo2 video "waves rolling onto a beach" --model ./show-o2-video --frames 17 --fps 8 -o waves.png
  showo2 video "the boat sails away" --model ./show-o2-video --image boat.jpg --frames-dir frames/`,
  async run(ctx, args, values) {
    const prompts = requiredPrompts(values, args);
    if (prompts.length > 1) throw new UsageError('video takes one prompt');
    const prompt = prompts[0]!;
    const sampling = samplingOptions(values);
    const frames = intValue(values, 'frames', 1, 4097);
    const fps = numberValue(values, 'fps', 'a number from 1 to 1000', (n) => n >= 1 && n <= 1000) ?? 8;
    const seed = seedValue(values);
    const output = fillPattern(stringValue(values, 'output') ?? 'showo2-video-{seed}.png', { seed, index: 0, prompt }, '--output');
    checkPng(output, '--output');
    const framesDir = stringValue(values, 'frames-dir');
    const image = stringValue(values, 'image');

    const model: ShowO2Model = await loadModel(ctx, values);
    try {
      const progress = generationProgress(ctx, '', image !== undefined);
      const result = await generating(ctx, () =>
        model.generateVideo({
          ...sampling,
          prompt,
          seed,
          ...(frames !== undefined ? { frames } : {}),
          ...(image !== undefined ? { image } : {}),
          signal: ctx.signal,
          onStep: progress.onStep,
        }),
      );
      progress.done();
      const videoFrames: RgbImage[] = result.videos[0]!;
      const task = ctx.progress.start(`writing ${output}`);
      writeFile(output, await encodeAnimatedPng(videoFrames, { fps }));
      const framePaths = framesDir === undefined ? [] : videoFrames.map((_, i) => path.join(framesDir, `frame-${String(i).padStart(4, '0')}.png`));
      framePaths.forEach((file, i) => writeFile(file, encodePng(videoFrames[i]!)));
      task.done();
      const { width, height } = videoFrames[0]!;
      if (ctx.json) {
        printJson(ctx.io, {
          command: 'video',
          path: output,
          frames: videoFrames.length,
          fps,
          width,
          height,
          seed,
          device: model.device,
          framePaths,
          timings: result.timings,
        });
      } else {
        ctx.io.out(`wrote ${output} (${videoFrames.length} frames, ${width}x${height}, ${fps} fps)`);
        if (framesDir !== undefined) ctx.io.out(`wrote ${framePaths.length} frames to ${framesDir}`);
        ctx.io.out(`seed: ${seed}`);
      }
    } finally {
      model.dispose();
    }
  },
};
