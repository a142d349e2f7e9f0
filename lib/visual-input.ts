/**
 * The images and videos a user hands to the model: reading an {@link ImageInput} (a path, encoded bytes or pixels)
 * to an {@link RgbImage}, and turning an understanding image or video into the [-1, 1] pixel tensors the native model
 * reads (spec §8.2 and §8.3 preprocessing). Decoding and resampling run in a background thread (image-worker.ts).
 * Every error names the option it came from (`options.video.frames[3]`), so a service can tell its user which input
 * was wrong. test/fuzz/js/ fuzzes this path.
 *
 * @module
 */
import { promises as fs } from 'node:fs';

import { createError, invalidParameterError, ShowO2Error } from './errors.js';
import { checkRgbImage, type RgbImage } from './image.js';
import { runImageJob, type ImageJob, type JobResult } from './image-worker.js';
import { uniformFrameIndices } from './prompt.js';
import { isDefined, isPlainObject, isPositiveInteger, isString } from './validate.js';

/**
 * An image: a file path, encoded PNG, JPEG or WebP bytes, or decoded pixels (see {@link decodeImage}).
 *
 * @example
 * ```ts
 * const a: ImageInput = 'cat.png';
 * const b: ImageInput = readFileSync('cat.jpg');
 * const c: ImageInput = { width: 1, height: 1, data: new Uint8Array([255, 0, 0]) };
 * ```
 */
export type ImageInput = string | Uint8Array | RgbImage;

/**
 * A video for understanding: its frames in order (decode the video with the tool of your choice). `numFrames`
 * frames are sampled uniformly from them, as the reference does (spec §8.3).
 *
 * @example
 * ```ts
 * const video: VideoInput = { frames: ['f000.png', 'f001.png', 'f002.png'], numFrames: 32 };
 * ```
 */
export interface VideoInput {
  /** The frames, in order; at least one. */
  frames: readonly ImageInput[];
  /** How many frames to sample uniformly (repeating frames of a short video). Defaults to 32 (the reference's). */
  numFrames?: number;
}

/** The most frames {@link VideoInput.numFrames} may ask for. */
export const MAX_VIDEO_FRAMES = 1024;

/** A {@link VideoInput} after validation: `numFrames` filled in. */
export interface ResolvedVideoInput {
  frames: readonly ImageInput[];
  numFrames: number;
}

/** Pixels for the native model: `frames` planes of 3 x resolution x resolution floats in [-1, 1], frame after frame. */
export interface UnderstandingPixels {
  data: Float32Array;
  frames: number;
}

/** An image input made ready for the preprocessing thread: its bytes (read from disk for a path) or checked pixels. */
async function loadImageInput(input: unknown, name: string): Promise<{ image: Uint8Array | RgbImage; label: string }> {
  if (isString(input)) {
    try {
      return { image: await fs.readFile(input), label: `${name} (${input})` };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw createError(
        code === 'ENOENT' ? 'ERR_FILE_NOT_FOUND' : 'ERR_FILE_READ',
        `Cannot read the image ${input} (${name}): ${(err as Error).message}`,
        { cause: err },
      );
    }
  }
  if (input instanceof Uint8Array) return { image: input, label: name };
  if (isPlainObject(input) && 'width' in input && 'height' in input && 'data' in input) {
    checkRgbImage(input, name);
    return { image: input, label: name };
  }
  throw invalidParameterError(name, 'a file path, PNG/JPEG/WebP bytes or an RgbImage', input);
}

/**
 * Loads one image input and runs `job` on it in the preprocessing thread (lib/image-worker.ts), so the event loop
 * stays free however large the image. Errors are the synchronous functions' ShowO2Errors, prefixed with the option
 * (and file) they concern.
 */
async function preprocess<J extends ImageJob>(input: unknown, name: string, job: J): Promise<JobResult<J>> {
  const { image, label } = await loadImageInput(input, name);
  try {
    return await runImageJob(job, image);
  } catch (err) {
    if (err instanceof ShowO2Error) throw createError(err.code, `${label}: ${err.message}`, { cause: err });
    throw err;
  }
}

/**
 * Reads one image input to pixels. A path is read asynchronously; bytes are decoded off the event loop; pixels are
 * checked (a plain `{ width, height, data }` object with `data.length === width * height * 3`) and returned as they
 * are. Errors name `name` and, for a path, the file.
 */
export async function readImageInput(input: unknown, name: string): Promise<RgbImage> {
  if (isPlainObject(input) && !(input instanceof Uint8Array) && 'data' in input) {
    checkRgbImage(input, name);
    return input;
  }
  return preprocess(input, name, { op: 'decode' });
}

/** Validates a {@link VideoInput} given as `name` (frames are checked when read, by {@link videoPixels}). */
export function checkVideoInput(value: unknown, name = 'options.video'): ResolvedVideoInput {
  if (!isPlainObject(value)) throw invalidParameterError(name, 'an object { frames, numFrames? }', value);
  const { frames, numFrames } = value as Partial<VideoInput>;
  if (!Array.isArray(frames) || frames.length === 0) {
    throw invalidParameterError(`${name}.frames`, 'a non-empty array of images', frames);
  }
  if (isDefined(numFrames) && (!isPositiveInteger(numFrames) || numFrames > MAX_VIDEO_FRAMES)) {
    throw invalidParameterError(`${name}.numFrames`, `an integer from 1 to ${MAX_VIDEO_FRAMES}`, numFrames);
  }
  return { frames, numFrames: numFrames ?? 32 };
}

/**
 * The pixels of an image to understand: the shorter side resized to `resolution` (bicubic, antialiased), then
 * centre-cropped to a square (the reference's image transform, spec §8.2).
 */
export async function understandingImagePixels(input: unknown, resolution: number, name: string): Promise<Float32Array> {
  return preprocess(input, name, { op: 'understanding', size: resolution });
}

/**
 * The pixels of image-to-video's first frame: the shorter side resized so the image covers `width` x `height`, then
 * centre-cropped to it.
 */
export async function coverImagePixels(input: unknown, width: number, height: number, name: string): Promise<Float32Array> {
  return preprocess(input, name, { op: 'cover', width, height });
}

/**
 * The pixels of a video to understand: `numFrames` frames sampled uniformly (numpy's `linspace`, truncated), each
 * letterboxed to `resolution` (spec §8.3). A frame picked more than once is read and converted once.
 */
export async function videoPixels(video: ResolvedVideoInput, resolution: number, name = 'options.video'): Promise<UnderstandingPixels> {
  const indices = uniformFrameIndices(video.frames.length, video.numFrames);
  const frameSize = 3 * resolution * resolution;
  const data = new Float32Array(indices.length * frameSize);
  const converted = new Map<number, Float32Array>();
  for (let i = 0; i < indices.length; i++) {
    const index = indices[i]!;
    let frame = converted.get(index);
    if (!frame) {
      frame = await preprocess(video.frames[index], `${name}.frames[${index}]`, { op: 'letterbox', size: resolution });
      converted.set(index, frame);
    }
    data.set(frame, i * frameSize);
  }
  return { data, frames: indices.length };
}
