// The understanding inputs: an image (path, bytes or pixels) resized and centre-cropped, or a video's frames
// sampled and letterboxed (lib/visual-input.ts, what model.answer and chat.ask run before the model). The bytes are
// read as a small program: a mode, a resolution, numFrames, then frames of every kind (encoded images, pixel
// objects of right and wrong sizes, malformed values, missing files). Every input must give pixels of exactly the
// promised size, finite and in [-1, 1], or a typed error naming the option (`options.video.frames[2]`, ...).
import { checkVideoInput, understandingImagePixels, videoPixels } from '../../../../dist/visual-input.js';
import { readImageSize } from '../../../../dist/image.js';
import { check, expectedError, type FuzzTarget } from '../engine.js';
import { imageSeeds } from './image-decode.js';

const RESOLUTIONS = [16, 24, 32, 7];

/** Reads the fuzz input front to back; past the end every read gives zeros. */
class ByteReader {
  #at = 0;
  constructor(readonly data: Uint8Array) {}
  u8(): number {
    return this.#at < this.data.length ? this.data[this.#at++]! : 0;
  }
  u16(): number {
    return this.u8() | (this.u8() << 8);
  }
  bytes(n: number): Uint8Array {
    const out = this.data.subarray(this.#at, this.#at + n);
    this.#at += out.length;
    return out;
  }
  get remaining(): number {
    return this.data.length - this.#at;
  }
}

// Frame kinds, the first byte of each frame.
const ENCODED = 0;
const PIXELS = 1;
const BAD_PIXELS = 2;
const MISSING_FILE = 3;
const NOT_AN_IMAGE = 4;

function readFrame(r: ByteReader): unknown {
  const kind = r.u8() % 5;
  switch (kind) {
    case ENCODED:
      return r.bytes(r.u16()).slice();
    case PIXELS: {
      const width = 1 + (r.u8() % 48);
      const height = 1 + (r.u8() % 48);
      const lengthError = r.u8();
      // Mostly the right length; now and then a few bytes off.
      const length = Math.max(0, width * height * 3 + (lengthError < 200 ? 0 : lengthError - 228));
      const data = new Uint8Array(length);
      const fill = r.bytes(Math.min(length, 64));
      for (let i = 0; i < length; i++) data[i] = fill.length ? fill[i % fill.length]! : 0;
      return { width, height, data };
    }
    case BAD_PIXELS: {
      const variant = r.u8() % 6;
      const data = new Uint8Array(12);
      return [
        { width: 2, height: 2, data: new Float32Array(12) },
        { width: 0, height: 4, data },
        { width: 2.5, height: 2, data },
        { width: -2, height: -2, data },
        { width: 2, height: 2, data: Array.from(data) },
        { width: Number.NaN, height: 2, data },
      ][variant];
    }
    case MISSING_FILE:
      return `/nonexistent-showo2-fuzz/${r.u8()}.png`;
    default:
      return [null, 42, {}, [], true, ''][r.u8() % 6];
  }
}

/** Builds an input of this target's format: a video or an image made of the given encoded frames. */
function program(mode: number, resolution: number, numFrames: number, frames: readonly Uint8Array[]): Uint8Array {
  const parts: number[] = [mode, resolution, numFrames, frames.length];
  for (const f of frames) {
    parts.push(ENCODED, f.length & 0xff, f.length >>> 8, ...f);
  }
  return Uint8Array.from(parts);
}

const OK_CODES = ['ERR_INVALID_ARGUMENT', 'ERR_INVALID_IMAGE', 'ERR_FILE_NOT_FOUND'];

function checkPixels(data: Float32Array, expected: number, what: string): void {
  check(data.length === expected, () => `${what}: ${data.length} floats, expected ${expected}`);
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (!(v >= -1 && v <= 1)) throw new Error(`${what}: value ${v} at ${i} is not in [-1, 1]`);
  }
}

export const visualInputTarget: FuzzTarget = {
  name: 'visual_input',
  description: 'understanding images and video frames (paths, bytes, pixel objects) to pixels: exact sizes, [-1, 1], typed errors naming the frame',
  maxLength: 64 * 1024,
  dictionary: ['\\x00\\x00\\x00', '\\x01\\x04\\x04\\x00', '\\x02\\x00', '\\x03\\x00', '\\x04\\x00'],
  seeds: () => {
    // Small encoded fixtures only: the point is the frame handling, image_decode fuzzes the decoders.
    const small = imageSeeds().filter((s) => s.length < 6000);
    const seeds = [
      program(0, 0, 3, small.slice(0, 2)),
      program(1, 1, 0, small.slice(2, 5)),
      program(2, 2, 1, small.slice(5, 6)),
      program(0, 3, 1, small.slice(6, 7)),
      Uint8Array.from([0, 0, 4, 3, PIXELS, 5, 9, 0, 1, 2, 3, BAD_PIXELS, 1, MISSING_FILE, 7]),
      Uint8Array.from([2, 2, 0, 1, PIXELS, 47, 0, 0, 200]),
      Uint8Array.from([3, 0, 251, 2, NOT_AN_IMAGE, 1, PIXELS, 3, 3, 0]),
    ];
    return seeds;
  },
  async run(input) {
    const r = new ByteReader(input);
    const mode = r.u8() % 4;
    const resolution = RESOLUTIONS[r.u8() % RESOLUTIONS.length]!;
    const numFramesByte = r.u8();
    const frameCount = r.u8() % 6;
    const frames = Array.from({ length: frameCount }, () => readFrame(r));
    // As in image_decode: a frame whose header declares more than 4 megapixels is not run (seconds and gigabytes of
    // decoding each, the same code paths as a small image).
    const declared = (f: unknown): number => {
      if (!(f instanceof Uint8Array)) return 0;
      try {
        const { width, height } = readImageSize(f);
        return width * height;
      } catch {
        return 0;
      }
    };
    if (frames.some((f) => declared(f) > 1 << 22)) return 'large';
    try {
      if (mode === 2) {
        const pixels = await understandingImagePixels(frames[0], resolution, 'options.image');
        checkPixels(pixels, 3 * resolution * resolution, 'image');
        return 'ok:image';
      }
      // numFrames: mostly small valid counts, sometimes absent (32) or invalid.
      const numFrames =
        numFramesByte === 0 ? undefined : numFramesByte < 240 ? 1 + (numFramesByte % 12) : [0, 1025, 2.5, -1, '3', Number.NaN, null, 1024][numFramesByte % 8];
      const video = mode === 3 ? (numFramesByte % 2 ? frames : { frames: frames[0] }) : { frames, numFrames };
      const resolved = checkVideoInput(video);
      const pixels = await videoPixels(resolved, resolution);
      check(pixels.frames === resolved.numFrames, `${pixels.frames} frames, numFrames ${resolved.numFrames}`);
      checkPixels(pixels.data, pixels.frames * 3 * resolution * resolution, 'video');
      return `ok:video:${Math.min(frameCount, 3)}`;
    } catch (err) {
      return expectedError(err, OK_CODES, /options\.(image|video)/);
    }
  },
};
