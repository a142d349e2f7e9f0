/**
 * Animated PNG (APNG) writing: generated videos as one file every current browser plays, losslessly.
 *
 * APNG is PNG plus three ancillary chunks (the W3C PNG 3rd edition): `acTL` (frame count, loops), `fcTL` (each frame's
 * size, offset, delay) and `fdAT` (frames after the first, compressed like `IDAT`). A viewer that does not know APNG
 * shows the first frame as a plain PNG. Compression runs on libuv's thread pool (zlib), off the event loop.
 *
 * @module
 */
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';

import { checkOptionKeys, invalidParameterError } from './errors.js';
import type { RgbImage } from './image.js';
import { isDefined, isPlainObject, isPositiveInteger } from './validate.js';

const deflate = promisify(zlib.deflate);

/**
 * Options of {@link encodeAnimatedPng}.
 *
 * @example
 * ```ts
 * const options: AnimatedPngOptions = { fps: 16, loops: 0 };
 * ```
 */
export interface AnimatedPngOptions {
  /** Frames per second, 1 to 1000. Defaults to 8 (17 frames play in about 2 s). */
  fps?: number;
  /** How many times to play; 0 loops forever. Defaults to 0. */
  loops?: number;
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes: Uint8Array, crc = 0xffffffff): number {
  for (let i = 0; i < bytes.length; i++) crc = CRC_TABLE[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return crc;
}

/** One PNG chunk: length, type, data, CRC over type and data. */
function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, (crc32(out.subarray(4, 8 + data.length)) ^ 0xffffffff) >>> 0);
  return out;
}

function u32s(...values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setUint32(i * 4, v));
  return out;
}

/** The raw scanlines of an RGB image, each prefixed by filter type 0 (None). */
function scanlines(image: RgbImage): Uint8Array {
  const stride = image.width * 3;
  const out = new Uint8Array((stride + 1) * image.height);
  for (let y = 0; y < image.height; y++) out.set(image.data.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  return out;
}

/**
 * Encodes frames of one size as an animated PNG that browsers play (and other viewers show as its first frame).
 *
 * @param frames - the frames, all of the same width and height, in order.
 * @param options - frame rate and looping; see {@link AnimatedPngOptions}.
 * @returns the file's bytes.
 * @throws ShowO2Error `ERR_INVALID_ARGUMENT` for no frames, a missing or malformed frame (named by its index), frames
 * of different sizes, or bad options.
 *
 * @example
 * ```ts
 * import { writeFileSync } from 'node:fs';
 * import { encodeAnimatedPng } from 'showo2';
 *
 * const { videos } = await model.generateVideo({ prompt: 'waves on a beach' });
 * writeFileSync('waves.png', await encodeAnimatedPng(videos[0]!, { fps: 8 }));
 * ```
 */
export async function encodeAnimatedPng(frames: readonly RgbImage[], options: AnimatedPngOptions = {}): Promise<Uint8Array> {
  if (!Array.isArray(frames) || frames.length === 0) throw invalidParameterError('frames', 'a non-empty array of images', frames);
  if (!isPlainObject(options)) throw invalidParameterError('options', 'an object', options);
  checkOptionKeys(options, ['fps', 'loops']);
  const fps = options.fps ?? 8;
  if (typeof fps !== 'number' || !Number.isFinite(fps) || fps < 1 || fps > 1000) {
    throw invalidParameterError('options.fps', 'a number from 1 to 1000', options.fps);
  }
  const loops: unknown = options.loops ?? 0;
  if (typeof loops !== 'number' || !Number.isInteger(loops) || loops < 0 || loops > 0x7fffffff) {
    throw invalidParameterError('options.loops', 'a non-negative integer', options.loops);
  }
  // A plain loop, not forEach: a hole in the array is a missing frame too (forEach would skip it).
  for (let i = 0; i < frames.length; i++) {
    const f = frames[i];
    if (!isDefined(f) || !isPositiveInteger(f.width) || !isPositiveInteger(f.height) || !(f.data instanceof Uint8Array)) {
      throw invalidParameterError(`frames[${i}]`, 'an RgbImage', f);
    }
    const first = frames[0]!;
    if (f.width !== first.width || f.height !== first.height) {
      throw invalidParameterError(`frames[${i}]`, `a ${first.width}x${first.height} RGB image like frames[0]`, `${f.width}x${f.height}`);
    }
    if (f.data.length !== f.width * f.height * 3) {
      throw invalidParameterError(`frames[${i}].data`, `${f.width * f.height * 3} bytes (width * height * 3)`, `${f.data.length} bytes`);
    }
  }
  const { width, height } = frames[0]!;
  // The delay as a fraction: 1000/fps ms = delay_num/delay_den s with delay_den 1000 when fps does not divide evenly.
  const [delayNum, delayDen] = Number.isInteger(fps) ? [1, fps] : [Math.round(1000 / fps), 1000];
  const compressed = await Promise.all(frames.map((f) => deflate(scanlines(f))));

  const parts: Uint8Array[] = [Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)];
  const ihdr = new Uint8Array(13);
  new DataView(ihdr.buffer).setUint32(0, width);
  new DataView(ihdr.buffer).setUint32(4, height);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit, truecolour RGB, deflate, adaptive filtering, no interlace
  parts.push(chunk('IHDR', ihdr));
  parts.push(chunk('acTL', u32s(frames.length, loops)));
  let sequence = 0;
  compressed.forEach((data, i) => {
    const fctl = new Uint8Array(26);
    const view = new DataView(fctl.buffer);
    view.setUint32(0, sequence++);
    view.setUint32(4, width);
    view.setUint32(8, height);
    view.setUint32(12, 0); // x offset
    view.setUint32(16, 0); // y offset
    view.setUint16(20, delayNum);
    view.setUint16(22, delayDen);
    fctl[24] = 0; // dispose: none
    fctl[25] = 0; // blend: source (full opaque frames)
    parts.push(chunk('fcTL', fctl));
    if (i === 0) {
      parts.push(chunk('IDAT', data));
    } else {
      const fdat = new Uint8Array(4 + data.length);
      new DataView(fdat.buffer).setUint32(0, sequence++);
      fdat.set(data, 4);
      parts.push(chunk('fdAT', fdat));
    }
  });
  parts.push(chunk('IEND', new Uint8Array(0)));
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
