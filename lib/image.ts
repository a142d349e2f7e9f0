/**
 * Images in and out: decoding PNG, JPEG and WebP files to 8-bit RGB, encoding PNG and JPEG, the resizes and crops of
 * the reference preprocessing, and the conversions between pixels and the [-1, 1] planar floats the VAE reads and
 * writes. (WebP's container and decoder live in webp.ts.)
 *
 * Each function follows what the Show-o2 demos do with Pillow and torchvision (spec §3.1 "Image input convention"
 * and "Output handling", §8.2, §8.3), and test/unit/image.test.ts checks them against fixtures written by Pillow
 * (tools/fixtures/make_image_fixtures.py).
 *
 * @module
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import * as zlib from 'node:zlib';

import * as jpeg from 'jpeg-js';
import { PNG } from 'pngjs';

import { checkOptionKeys, createError, invalidParameterError, ShowO2Error } from './errors.js';
import { isInteger, isOneOf, isPlainObject, isPositiveInteger, isString } from './validate.js';
import { decodeWebp, hasWebpSignature, isTruncatedWebpSignature, readWebpHeader } from './webp.js';

/**
 * An 8-bit RGB image: `data` holds `width * height * 3` bytes, row-major, R, G, B per pixel, no padding.
 *
 * @example
 * ```ts
 * import type { RgbImage } from 'showo2';
 *
 * const red: RgbImage = { width: 1, height: 1, data: new Uint8Array([255, 0, 0]) };
 * ```
 */
export interface RgbImage {
  /** Width in pixels, a positive integer. */
  width: number;
  /** Height in pixels, a positive integer. */
  height: number;
  /** The pixels: `width * height * 3` bytes, row-major, RGB. */
  data: Uint8Array;
}

/**
 * Options of {@link tensorToImage}.
 *
 * @example
 * ```ts
 * import { tensorToImage, type TensorToImageOptions } from 'showo2';
 *
 * const asReference: TensorToImageOptions = { rounding: 'truncate' };
 * const image = tensorToImage(decoded, 432, 432, asReference);
 * ```
 */
export interface TensorToImageOptions {
  /**
   * How a level in [0, 255] becomes a byte. `'round'` rounds to the nearest level; `'truncate'` drops the fraction,
   * as the reference's `astype(uint8)` does (spec §3.1, §11.11), for bit-parity with its outputs.
   * Truncation biases every pixel down by half a level on average, which is why it is not the default.
   * Defaults to `'round'`.
   */
  rounding?: 'round' | 'truncate';
}

/**
 * The largest width or height {@link decodeImage} accepts, and the largest size the resize and crop functions
 * produce. Larger files are refused from their header, before any pixel is decoded.
 *
 * @example
 * ```ts
 * import { MAX_IMAGE_SIDE } from 'showo2';
 *
 * if (Math.max(width, height) > MAX_IMAGE_SIDE) console.error('too large to decode');
 * ```
 */
export const MAX_IMAGE_SIDE = 16384;

/**
 * The most pixels {@link decodeImage} accepts: 2^28, which is 768 MiB as RGB.
 *
 * @example
 * ```ts
 * import { MAX_IMAGE_PIXELS } from 'showo2';
 *
 * if (width * height > MAX_IMAGE_PIXELS) console.error('too large to decode');
 * ```
 */
export const MAX_IMAGE_PIXELS = 2 ** 28;

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const ROUNDINGS = ['round', 'truncate'] as const;

function invalidImage(message: string, cause?: unknown): ShowO2Error {
  return createError('ERR_INVALID_IMAGE', message, cause === undefined ? undefined : { cause });
}

function checkDimensions(format: string, width: number, height: number): void {
  if (width < 1 || height < 1) throw invalidImage(`Invalid ${format}: the header gives a size of ${width}x${height}`);
  if (width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE || width * height > MAX_IMAGE_PIXELS) {
    throw invalidImage(
      `${format} image of ${width}x${height} exceeds the limit of ${MAX_IMAGE_SIDE} pixels per side and ${MAX_IMAGE_PIXELS} pixels`,
    );
  }
}

function hasPngSignature(bytes: Uint8Array): boolean {
  return bytes.length >= PNG_SIGNATURE.length && PNG_SIGNATURE.every((b, i) => bytes[i] === b);
}

function hasJpegSignature(bytes: Uint8Array): boolean {
  return bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
}

function readU16(bytes: Uint8Array, at: number): number {
  return (bytes[at]! << 8) | bytes[at + 1]!;
}

function readU32(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) >>> 0) + ((bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!);
}

/** The size from the IHDR chunk, read before decoding so an oversized image is refused before any allocation. */
function pngDimensions(bytes: Uint8Array): [number, number] {
  const ihdr = String.fromCharCode(...bytes.subarray(12, 16));
  if (bytes.length < 24 || ihdr !== 'IHDR') throw invalidImage('Invalid PNG: the IHDR chunk is missing or truncated');
  return [readU32(bytes, 16), readU32(bytes, 20)];
}

/** What the marker walk learns before decoding: the size, each component's sampling factors, and the Adobe mark. */
interface JpegHeader {
  width: number;
  height: number;
  /** Horizontal and vertical sampling factors, in component order. */
  sampling: [number, number][];
  /** An APP14 "Adobe" segment is present (it can override the colour transform). */
  adobe: boolean;
}

/**
 * Reads the first SOFn marker, walking the marker segments up to the first scan. Each step moves forward by at least
 * two bytes, so corrupt lengths end the walk rather than loop.
 */
function readJpegHeader(bytes: Uint8Array): JpegHeader {
  let at = 2;
  let adobe = false;
  while (at + 3 < bytes.length) {
    if (bytes[at] !== 0xff) throw invalidImage(`Invalid JPEG: expected a marker at byte ${at}`);
    const marker = bytes[at + 1]!;
    if (marker === 0xff) {
      at += 1; // fill byte
      continue;
    }
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      at += 2; // markers without a length
      continue;
    }
    if (marker === 0xda || marker === 0xd9) break;
    const length = readU16(bytes, at + 2);
    if (length < 2) throw invalidImage(`Invalid JPEG: segment length ${length} at byte ${at}`);
    if (marker === 0xee && String.fromCharCode(...bytes.subarray(at + 4, at + 9)) === 'Adobe') adobe = true;
    const isFrame = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isFrame) {
      const count = bytes[at + 9] ?? 0;
      if (at + 10 + count * 3 > bytes.length) break;
      const sampling: [number, number][] = [];
      for (let c = 0; c < count; c++) {
        const hv = bytes[at + 11 + c * 3]!;
        sampling.push([hv >> 4, hv & 15]);
      }
      return { width: readU16(bytes, at + 7), height: readU16(bytes, at + 5), sampling, adobe };
    }
    at += 2 + length;
  }
  throw invalidImage('Invalid JPEG: no frame header (SOF marker) before the image data');
}

/** Samples per pixel of each PNG colour type. */
const PNG_CHANNELS: Readonly<Record<number, number>> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/** Adam7's passes: [x start, y start, x step, y step]. */
const ADAM7: readonly (readonly [number, number, number, number])[] = [
  [0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2],
];

/**
 * The bytes of filtered image data a PNG needs: one filter byte plus the packed samples per row, summed over the
 * Adam7 passes when interlaced (an empty pass has no rows).
 */
function pngImageDataSize(width: number, height: number, channels: number, depth: number, interlaced: boolean): number {
  const rows = (w: number, h: number): number => (w > 0 && h > 0 ? h * (1 + Math.ceil((w * channels * depth) / 8)) : 0);
  if (!interlaced) return rows(width, height);
  return ADAM7.reduce(
    (n, [x0, y0, dx, dy]) => n + rows(Math.ceil((width - x0) / dx), Math.ceil((height - y0) / dy)),
    0,
  );
}

/**
 * Inflates the image data (the IDAT chunks) once, bounded, before pngjs decodes: pngjs hands back uninitialised
 * memory as pixels when the data is too short (a truncated file would leak what the process held before), and
 * inflates interlaced data without any bound (a small file could expand to gigabytes). Pillow refuses short image data
 * as a truncated file too. Headers pngjs will refuse anyway (unknown colour type or depth) are left to it.
 */
function checkPngImageData(bytes: Uint8Array, width: number, height: number): void {
  const depth = bytes[24]!;
  const channels = PNG_CHANNELS[bytes[25]!];
  const interlace = bytes[28]!;
  if (channels === undefined || ![1, 2, 4, 8, 16].includes(depth) || interlace > 1) return;
  const needed = pngImageDataSize(width, height, channels, depth, interlace === 1);
  const parts: Uint8Array[] = [];
  for (let at = 8; ; ) {
    // A chunk past the end, or no IEND: the file was cut short (pngjs would say the same, later).
    if (at + 12 > bytes.length || at + 12 + readU32(bytes, at) > bytes.length) throw invalidImage('Invalid PNG: the file ends early (truncated)');
    const length = readU32(bytes, at);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    if (type === 'IDAT') parts.push(bytes.subarray(at + 8, at + 8 + length));
    if (type === 'IEND') break;
    at += 12 + length;
  }
  let inflated: number;
  try {
    // Z_SYNC_FLUSH: a stream cut short still gives what it holds (the length check below judges it), as Pillow reads it.
    inflated = zlib.inflateSync(Buffer.concat(parts), {
      finishFlush: zlib.constants.Z_SYNC_FLUSH,
      maxOutputLength: needed + PNG_SPARE_IMAGE_DATA,
    }).length;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw invalidImage(`Invalid PNG: the image data inflates to more than the ${needed} bytes a ${width}x${height} image needs`, err);
    }
    throw invalidImage(`Invalid PNG: the image data is not a valid zlib stream (${(err as Error).message})`, err);
  }
  if (inflated < needed) {
    throw invalidImage(`Invalid PNG: the image data ends early (truncated): ${inflated} of the ${needed} bytes a ${width}x${height} image needs`);
  }
}

/** Inflated image data past what the image needs that is still accepted (and ignored), as Pillow does. */
const PNG_SPARE_IMAGE_DATA = 1 << 16;

/** What pngjs's synchronous reader returns: the header fields and the pixels, always expanded to RGBA. */
interface PngjsImage {
  depth: number;
  colorType: number;
  transColor?: number[];
  data: Buffer | Uint16Array;
}

function decodePng(bytes: Uint8Array): RgbImage {
  const [width, height] = pngDimensions(bytes);
  checkDimensions('PNG', width, height);
  checkPngImageData(bytes, width, height);
  let png: PngjsImage;
  try {
    // skipRescale keeps the stored samples so the scaling below can follow Pillow (pngjs would round v * 255 / 65535).
    png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), { skipRescale: true }) as unknown as PngjsImage;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    // pngjs words running out of input as "read requests waiting on finished stream".
    const reason = /finished stream/.test(message) ? 'the file ends early (truncated)' : message;
    throw invalidImage(`Invalid PNG: ${reason}`, err);
  }
  const pixels = width * height;
  const rgba = png.data;
  if (rgba.length < pixels * 4) throw invalidImage('Invalid PNG: the decoded data is shorter than the image');
  // Palettes arrive as 8-bit colours. Other types keep their stored depth: 16-bit keeps the high byte, as Pillow's
  // "RGB;16B" unpacker does; 1, 2 and 4-bit gray scale to 0..255 exactly (x 255, 85, 17).
  const shift = png.depth === 16 ? 8 : 0;
  const scale = png.depth < 8 && png.colorType !== 3 ? 255 / (2 ** png.depth - 1) : 1;
  // pngjs blackens the pixels that match a tRNS colour key; Pillow's convert("RGB") keeps their colour, so restore it
  // (only those pixels have alpha 0, since a colour key makes every other pixel opaque).
  const key = png.colorType !== 3 ? png.transColor : undefined;
  const data = new Uint8Array(pixels * 3);
  for (let p = 0; p < pixels; p++) {
    let r = rgba[p * 4]!;
    let g = rgba[p * 4 + 1]!;
    let b = rgba[p * 4 + 2]!;
    if (key && rgba[p * 4 + 3] === 0) {
      r = key[0]!;
      g = key[1] ?? r;
      b = key[2] ?? r;
    }
    data[p * 3] = (r >> shift) * scale;
    data[p * 3 + 1] = (g >> shift) * scale;
    data[p * 3 + 2] = (b >> shift) * scale;
  }
  return { width, height, data };
}

/**
 * The chroma layouts whose upsampling and colour conversion showo2 does itself, the way libjpeg-turbo (inside Pillow)
 * does: YCbCr with chroma at full resolution (4:4:4), halved horizontally (4:2:2) or in both directions (4:2:0).
 * jpeg-js would repeat chroma samples, which differs from Pillow by tens of levels at colour edges.
 */
function libjpegLayout(header: JpegHeader): [number, number] | undefined {
  if (header.adobe || header.sampling.length !== 3) return undefined;
  const [[h, v], [cbH, cbV], [crH, crV]] = header.sampling as [[number, number], [number, number], [number, number]];
  if (cbH !== 1 || cbV !== 1 || crH !== 1 || crV !== 1) return undefined;
  if ((h === 1 && v === 1) || (h === 2 && v === 1) || (h === 2 && v === 2)) return [h, v];
  return undefined;
}

function decodeJpeg(bytes: Uint8Array): RgbImage {
  const header = readJpegHeader(bytes);
  const { width, height } = header;
  checkDimensions('JPEG', width, height);
  const layout = libjpegLayout(header);
  let decoded: { width: number; height: number; data: Uint8Array };
  try {
    decoded = jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: false,
      // With our own conversion, jpeg-js hands back Y, Cb, Cr (chroma repeated, from which we recover the samples).
      ...(layout ? { colorTransform: false } : {}),
      // Pillow refuses truncated or damaged JPEGs by default; jpeg-js's tolerant mode would return a partial image.
      tolerantDecoding: false,
      // Our own limits above are the ones that apply; these only need to stay out of their way.
      maxResolutionInMP: MAX_IMAGE_PIXELS / 1e6 + 1,
      maxMemoryUsageInMB: 8192,
    });
  } catch (err) {
    throw invalidImage(`Invalid JPEG: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  if (decoded.width !== width || decoded.height !== height || decoded.data.length !== width * height * 3) {
    throw invalidImage(`Invalid JPEG: decoded ${decoded.width}x${decoded.height}, the header says ${width}x${height}`);
  }
  const data = layout ? yccToRgb(decoded.data, width, height, layout[0], layout[1]) : decoded.data;
  return { width, height, data };
}

/** libjpeg's FIX(): a coefficient in 16-bit fixed point. */
function fix16(x: number): number {
  return Math.trunc(x * 65536 + 0.5);
}

/** libjpeg-turbo's jdcolor.c tables (build_ycc_rgb_table), indexed by the Cb or Cr sample. */
const YCC_TABLES = (() => {
  const crR = new Int32Array(256);
  const cbB = new Int32Array(256);
  const crG = new Int32Array(256);
  const cbG = new Int32Array(256);
  const half = 1 << 15;
  for (let i = 0; i < 256; i++) {
    const x = i - 128;
    crR[i] = (fix16(1.402) * x + half) >> 16;
    cbB[i] = (fix16(1.772) * x + half) >> 16;
    crG[i] = -fix16(0.71414) * x;
    cbG[i] = -fix16(0.34414) * x + half;
  }
  return { crR, cbB, crG, cbG };
})();

function clampByte(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/**
 * One chroma plane at full resolution, upsampled as libjpeg-turbo's jdsample.c does by default ("fancy"
 * upsampling): each output sample weighs its nearest input sample 3/4 and the next one 1/4 per halved axis
 * (h2v1_fancy_upsample, h2v2_fancy_upsample, with their rounding biases); edges repeat the outermost sample.
 * libjpeg-turbo falls back to plain repetition for planes two samples wide or less, and so do we.
 */
function upsampleChroma(ycc: Uint8Array, channel: number, width: number, height: number, h: number, v: number): Uint8Array {
  const out = new Uint8Array(width * height);
  const cw = Math.ceil(width / h);
  const chh = Math.ceil(height / v);
  // jpeg-js repeated each sample over its h x v block, so the sample sits at the block's top-left pixel.
  const s = (cx: number, cy: number): number => ycc[((cy * v) * width + cx * h) * 3 + channel]!;
  const fancy = cw > 2;
  for (let y = 0; y < height; y++) {
    const cy = Math.floor(y / v);
    for (let x = 0; x < width; x++) {
      const cx = Math.floor(x / h);
      if (h === 1 || !fancy) {
        out[y * width + x] = s(cx, cy);
        continue;
      }
      const side = x % 2 === 0 ? Math.max(cx - 1, 0) : Math.min(cx + 1, cw - 1);
      if (v === 1) {
        out[y * width + x] = (3 * s(cx, cy) + s(side, cy) + (x % 2 === 0 ? 1 : 2)) >> 2;
      } else {
        const near = y % 2 === 0 ? Math.max(cy - 1, 0) : Math.min(cy + 1, chh - 1);
        const colsum = (c: number): number => 3 * s(c, cy) + s(c, near);
        out[y * width + x] = (3 * colsum(cx) + colsum(side) + (x % 2 === 0 ? 8 : 7)) >> 4;
      }
    }
  }
  return out;
}

/** Y, Cb, Cr (chroma as jpeg-js repeated it) to RGB, as libjpeg-turbo's ycc_rgb_convert does, in fixed point. */
function yccToRgb(ycc: Uint8Array, width: number, height: number, h: number, v: number): Uint8Array {
  const cb = upsampleChroma(ycc, 1, width, height, h, v);
  const cr = upsampleChroma(ycc, 2, width, height, h, v);
  const { crR, cbB, crG, cbG } = YCC_TABLES;
  const out = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) {
    const y = ycc[p * 3]!;
    const b = cb[p]!;
    const r = cr[p]!;
    out[p * 3] = clampByte(y + crR[r]!);
    out[p * 3 + 1] = clampByte(y + ((cbG[b]! + crG[r]!) >> 16));
    out[p * 3 + 2] = clampByte(y + cbB[b]!);
  }
  return out;
}

/**
 * Decodes a PNG, JPEG or WebP file (recognised by its first bytes, not its name) to 8-bit RGB, as the reference's
 * `Image.open(path).convert("RGB")` does:
 *
 * - Alpha is dropped, not composited: a transparent pixel keeps its stored colour (Pillow's `convert("RGB")`).
 * - Grayscale is replicated to R, G and B; palettes are expanded (their transparency is dropped too).
 * - 16-bit samples keep their high byte, as Pillow does for 16-bit RGB. For 16-bit *grayscale* Pillow clips every
 *   value above 255 to white instead; showo2 deliberately does not copy that.
 * - No colour management, gamma correction or EXIF rotation: Pillow applies none of them on open either.
 * - An animated WebP gives its first frame, as Pillow does: the frame on its canvas, black where the frame does not
 *   reach (Pillow's canvas starts transparent black, and the alpha is dropped).
 *
 * PNG decoding is exact. WebP decoding (lossy, lossless, with or without alpha) is libwebp's, compiled to WebAssembly
 * and run synchronously in-process; Pillow decodes with libwebp too, and the fixtures match it exactly, lossy ones
 * included. JPEG decoding runs jpeg-js for the entropy decoding and IDCT, then upsamples chroma and
 * converts YCbCr to RGB exactly as Pillow's libjpeg-turbo does (4:4:4, 4:2:2 and 4:2:0; other layouts and Adobe
 * JPEGs use jpeg-js's own conversion). jpeg-js's IDCT rounds differently from libjpeg-turbo's, so a decoded JPEG can
 * differ from Pillow's by up to about 3 levels on a small fraction of pixels (0.2 levels on average on the fixtures).
 *
 * @param bytes - the whole encoded file.
 * @returns the pixels.
 * @throws ShowO2Error `ERR_INVALID_IMAGE` for anything that is not a complete, valid PNG, JPEG or WebP (the message
 * names the format and what is wrong), or an image larger than {@link MAX_IMAGE_SIDE} per side or
 * {@link MAX_IMAGE_PIXELS} in all (checked from the header, before decoding); `ERR_INVALID_ARGUMENT` when `bytes` is
 * not a Uint8Array or Buffer.
 *
 * @example
 * ```ts
 * import { readFileSync } from 'node:fs';
 * import { decodeImage } from 'showo2';
 *
 * const image = decodeImage(readFileSync('cat.jpg'));
 * console.log(image.width, image.height, image.data.length); // data.length === width * height * 3
 * ```
 */
export function decodeImage(bytes: Uint8Array): RgbImage {
  if (!(bytes instanceof Uint8Array)) throw invalidParameterError('bytes', 'a Uint8Array or Buffer', bytes);
  if (hasPngSignature(bytes)) return decodePng(bytes);
  if (hasJpegSignature(bytes)) return decodeJpeg(bytes);
  if (hasWebpSignature(bytes)) {
    const header = readWebpHeader(bytes);
    checkDimensions('WebP', header.width, header.height);
    return decodeWebp(header);
  }
  throw unrecognisedImage(bytes);
}

/** The error for bytes that start like none of PNG, JPEG and WebP (or like a WebP header cut short). */
function unrecognisedImage(bytes: Uint8Array): ShowO2Error {
  if (isTruncatedWebpSignature(bytes)) {
    return invalidImage(`Invalid WebP: the file ends early (truncated): ${bytes.length} bytes, fewer than its 12-byte header`);
  }
  if (bytes.length === 0) return invalidImage('Cannot decode an image from 0 bytes');
  const head = Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ');
  return invalidImage(`Unsupported image format: expected PNG, JPEG or WebP, but the file starts with bytes ${head}`);
}

/**
 * The format and size of an encoded image, read from its header without decoding any pixel (microseconds, whatever
 * the size). A service can use it to refuse images it does not want to pay for: decoding costs time and memory in
 * proportion to the pixels, and a small file can declare a large image (a 1 kB progressive JPEG can describe 40
 * megapixels, which take seconds to decode). {@link decodeImage} refuses only what exceeds {@link MAX_IMAGE_SIDE}
 * or {@link MAX_IMAGE_PIXELS}.
 *
 * @param bytes - the encoded file (its first bytes are enough for PNG and JPEG).
 * @returns the format and the size the header gives (the canvas size for an animated WebP).
 * @throws ShowO2Error `ERR_INVALID_IMAGE` when the bytes are not PNG, JPEG or WebP or the header is damaged or
 * gives an empty size; `ERR_INVALID_ARGUMENT` when `bytes` is not a Uint8Array or Buffer.
 *
 * @example
 * ```ts
 * import { readImageSize } from 'showo2';
 *
 * const { width, height } = readImageSize(upload);
 * if (width * height > 25_000_000) throw new Error('images up to 25 megapixels, please');
 * const answer = await model.answer({ question: 'What is this?', image: upload });
 * ```
 */
export function readImageSize(bytes: Uint8Array): { format: 'png' | 'jpeg' | 'webp'; width: number; height: number } {
  if (!(bytes instanceof Uint8Array)) throw invalidParameterError('bytes', 'a Uint8Array or Buffer', bytes);
  let format: 'png' | 'jpeg' | 'webp';
  let width: number;
  let height: number;
  if (hasPngSignature(bytes)) {
    format = 'png';
    [width, height] = pngDimensions(bytes);
  } else if (hasJpegSignature(bytes)) {
    format = 'jpeg';
    ({ width, height } = readJpegHeader(bytes));
  } else if (hasWebpSignature(bytes)) {
    format = 'webp';
    ({ width, height } = readWebpHeader(bytes));
  } else {
    throw unrecognisedImage(bytes);
  }
  const name = { png: 'PNG', jpeg: 'JPEG', webp: 'WebP' }[format];
  if (width < 1 || height < 1) throw invalidImage(`Invalid ${name}: the header gives a size of ${width}x${height}`);
  return { format, width, height };
}

/** Throws `ERR_INVALID_ARGUMENT` naming `name` unless `image` is a well-formed {@link RgbImage}. */
export function checkRgbImage(image: unknown, name: string): asserts image is RgbImage {
  const candidate = image as Partial<RgbImage> | null;
  if (typeof image !== 'object' || image === null) {
    throw invalidParameterError(name, 'an RgbImage ({ width, height, data })', image);
  }
  if (!isPositiveInteger(candidate!.width)) throw invalidParameterError(`${name}.width`, 'a positive integer', candidate!.width);
  if (!isPositiveInteger(candidate!.height)) throw invalidParameterError(`${name}.height`, 'a positive integer', candidate!.height);
  if (!(candidate!.data instanceof Uint8Array)) throw invalidParameterError(`${name}.data`, 'a Uint8Array', candidate!.data);
  const expected = candidate!.width * candidate!.height * 3;
  if (candidate!.data.length !== expected) {
    throw invalidParameterError(`${name}.data`, `${expected} bytes (width * height * 3)`, `${candidate!.data.length} bytes`);
  }
}

function checkSize(value: unknown, name: string, max = MAX_IMAGE_SIDE): asserts value is number {
  if (!isPositiveInteger(value) || value > max) throw invalidParameterError(name, `an integer between 1 and ${max}`, value);
}

/**
 * Encodes an image as an 8-bit RGB PNG (lossless: {@link decodeImage} gives the same bytes back).
 *
 * @param image - the pixels.
 * @returns the PNG file.
 * @throws ShowO2Error `ERR_INVALID_ARGUMENT` when `image` is not a well-formed {@link RgbImage}.
 *
 * @example
 * ```ts
 * import { writeFileSync } from 'node:fs';
 * import { encodePng } from 'showo2';
 *
 * writeFileSync('red.png', encodePng({ width: 1, height: 1, data: new Uint8Array([255, 0, 0]) }));
 * ```
 */
export function encodePng(image: RgbImage): Uint8Array {
  checkRgbImage(image, 'image');
  const png = new PNG({ width: image.width, height: image.height, colorType: 2, inputColorType: 2, inputHasAlpha: false });
  png.data = Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength);
  const file = PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false });
  return new Uint8Array(file.buffer, file.byteOffset, file.byteLength);
}

/**
 * Options of {@link encodeJpeg} (and of {@link writeImage} for `.jpg`/`.jpeg` paths).
 *
 * @example
 * ```ts
 * import type { JpegOptions } from 'showo2';
 *
 * const small: JpegOptions = { quality: 75 };
 * ```
 */
export interface JpegOptions {
  /**
   * JPEG quality, an integer from 1 (smallest file, worst) to 100 (largest, best), on the IJG scale libjpeg and Pillow
   * use: it scales the standard quantisation tables. Defaults to {@link DEFAULT_JPEG_QUALITY} (90): higher than
   * Pillow's 75, since generated images are usually kept, not thumbnailed.
   */
  quality?: number;
}

/** The JPEG quality {@link encodeJpeg} and {@link writeImage} use when none is given: 90. */
export const DEFAULT_JPEG_QUALITY = 90;

function jpegQuality(options: unknown, name: string): number {
  if (options === undefined) return DEFAULT_JPEG_QUALITY;
  if (!isPlainObject(options)) throw invalidParameterError(name, 'an object', options);
  checkOptionKeys(options, ['quality'], name);
  const quality = options.quality ?? DEFAULT_JPEG_QUALITY;
  if (!isInteger(quality) || quality < 1 || quality > 100) {
    throw invalidParameterError(`${name}.quality`, 'an integer from 1 to 100', options.quality);
  }
  return quality;
}

function encodeJpegChecked(image: RgbImage, quality: number): Uint8Array {
  // jpeg-js reads RGBA; the alpha byte is ignored.
  const pixels = image.width * image.height;
  const rgba = new Uint8Array(pixels * 4);
  for (let p = 0; p < pixels; p++) {
    rgba[p * 4] = image.data[p * 3]!;
    rgba[p * 4 + 1] = image.data[p * 3 + 1]!;
    rgba[p * 4 + 2] = image.data[p * 3 + 2]!;
    rgba[p * 4 + 3] = 255;
  }
  const file = jpeg.encode({ width: image.width, height: image.height, data: rgba }, quality).data;
  return new Uint8Array(file.buffer, file.byteOffset, file.byteLength);
}

/**
 * Encodes an image as a baseline JPEG (JFIF, YCbCr with full-resolution chroma, 4:4:4), with jpeg-js's encoder.
 * JPEG is lossy: {@link decodeImage} gives back pixels close to, not equal to, the input (within a few levels at
 * quality 90 on smooth images; edges and noise lose more). Use {@link encodePng} to keep every pixel.
 *
 * @param image - the pixels.
 * @param options - the quality; see {@link JpegOptions}.
 * @returns the JPEG file.
 * @throws ShowO2Error `ERR_INVALID_ARGUMENT` when `image` is not a well-formed {@link RgbImage} or the quality is not
 * an integer from 1 to 100.
 *
 * @example
 * ```ts
 * import { writeFileSync } from 'node:fs';
 * import { encodeJpeg } from 'showo2';
 *
 * writeFileSync('fox.jpg', encodeJpeg(images[0]!, { quality: 85 }));
 * ```
 */
export function encodeJpeg(image: RgbImage, options?: JpegOptions): Uint8Array {
  checkRgbImage(image, 'image');
  return encodeJpegChecked(image, jpegQuality(options, 'options'));
}

/**
 * Options of {@link writeImage}.
 *
 * @example
 * ```ts
 * import type { WriteImageOptions } from 'showo2';
 *
 * const options: WriteImageOptions = { quality: 80 }; // used for .jpg/.jpeg, ignored for .png
 * ```
 */
export interface WriteImageOptions extends JpegOptions {}

/** The formats {@link writeImage} writes, by file extension (lower-cased). */
const OUTPUT_FORMATS: Record<string, 'png' | 'jpeg'> = { '.png': 'png', '.jpg': 'jpeg', '.jpeg': 'jpeg' };

/**
 * The bytes of `image` in the format `file`'s extension names: `.png` (lossless) or `.jpg`/`.jpeg` (JPEG at
 * `options.quality`). The CLI's image outputs go through here.
 * @internal
 */
export function encodeImageForPath(file: string, image: RgbImage, options?: WriteImageOptions, name = 'path'): Uint8Array {
  if (!isString(file) || file.length === 0) throw invalidParameterError(name, 'a file path', file);
  const extension = path.extname(file).toLowerCase();
  const format = OUTPUT_FORMATS[extension];
  if (format === undefined) {
    const got = extension === '' ? 'no extension' : `the extension ${extension}`;
    throw invalidParameterError(name, `a path ending in .png, .jpg or .jpeg (${got}; WebP output is not supported)`, file);
  }
  checkRgbImage(image, 'image');
  const quality = jpegQuality(options, 'options');
  return format === 'png' ? encodePng(image) : encodeJpegChecked(image, quality);
}

/**
 * Writes an image to a file, in the format its extension names (case-insensitive): `.png` for a lossless PNG,
 * `.jpg` or `.jpeg` for a JPEG ({@link encodeJpeg}, at `options.quality`). WebP output is not supported (showo2's
 * WebP codec only decodes). The folder must exist; an existing file is replaced.
 *
 * @param file - where to write; its extension picks the format.
 * @param image - the pixels.
 * @param options - see {@link WriteImageOptions}; `quality` is checked for every format but only JPEG uses it.
 * @returns once the file is written.
 * @throws ShowO2Error `ERR_INVALID_ARGUMENT` for another extension, a malformed image or a bad quality (before
 * anything is written); `ERR_FILE_NOT_FOUND` when the folder does not exist; `ERR_FILE_READ` when the OS refuses the
 * write (permissions, a full disk, a directory at that path).
 *
 * @example
 * ```ts
 * import { writeImage } from 'showo2';
 *
 * const { images, seed } = await model.generateImages({ prompt: 'a red fox in the snow' });
 * await writeImage(`fox-${seed}.jpg`, images[0]!, { quality: 85 });
 * await writeImage(`fox-${seed}.png`, images[0]!);
 * ```
 */
export async function writeImage(file: string, image: RgbImage, options?: WriteImageOptions): Promise<void> {
  const bytes = encodeImageForPath(file, image, options);
  try {
    await fsp.writeFile(file, bytes);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw createError(
      code === 'ENOENT' ? 'ERR_FILE_NOT_FOUND' : 'ERR_FILE_READ',
      `Cannot write the image ${file}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

// ---- Resampling: a transcription of Pillow's src/libImaging/Resample.c (ImagingResample, 8 bits per channel). ----

/** Pillow's bicubic kernel (a = -0.5), support 2. */
function bicubicFilter(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

/** Fixed-point bits of the 8-bit coefficients (Resample.c PRECISION_BITS = 32 - 8 - 2). */
const PRECISION_BITS = 22;
const PRECISION_ONE = 2 ** PRECISION_BITS;

interface Coefficients {
  /** First input index of each output sample. */
  bounds: Int32Array;
  /** How many input samples each output sample reads. */
  counts: Int32Array;
  /** `ksize` fixed-point weights per output sample. */
  weights: Int32Array;
  ksize: number;
}

/**
 * Pillow's `precompute_coeffs` then `normalize_coeffs_8bpc`. When downscaling the kernel is stretched by the scale
 * factor, which is the antialiasing. The arithmetic is kept in the same order as the C so the doubles agree.
 */
function precomputeCoefficients(inSize: number, outSize: number): Coefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 2 * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize);
  const counts = new Int32Array(outSize);
  const weights = new Int32Array(outSize * ksize);
  const kernel = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterScale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = bicubicFilter((x + xmin - center + 0.5) * ss);
      kernel[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const w = ww !== 0 ? kernel[x]! / ww : kernel[x]!;
      // C's (int) cast truncates toward zero after the ±0.5: round half away from zero.
      weights[xx * ksize + x] = w < 0 ? Math.trunc(-0.5 + w * PRECISION_ONE) : Math.trunc(0.5 + w * PRECISION_ONE);
    }
    bounds[xx] = xmin;
    counts[xx] = xmax;
  }
  return { bounds, counts, weights, ksize };
}

/** Pillow's clip8: the fixed-point sum back to a byte. */
function clip8(sum: number): number {
  if (sum >= PRECISION_ONE * 256) return 255;
  if (sum <= 0) return 0;
  return Math.floor(sum / PRECISION_ONE);
}

function resampleHorizontal(src: Uint8Array, srcWidth: number, rows: number, firstRow: number, width: number): Uint8Array {
  const { bounds, counts, weights, ksize } = precomputeCoefficients(srcWidth, width);
  const out = new Uint8Array(width * rows * 3);
  for (let y = 0; y < rows; y++) {
    const rowBase = (y + firstRow) * srcWidth * 3;
    for (let xx = 0; xx < width; xx++) {
      const xmin = bounds[xx]!;
      const n = counts[xx]!;
      const k = xx * ksize;
      let r = PRECISION_ONE / 2;
      let g = r;
      let b = r;
      for (let x = 0; x < n; x++) {
        const w = weights[k + x]!;
        const at = rowBase + (xmin + x) * 3;
        r += src[at]! * w;
        g += src[at + 1]! * w;
        b += src[at + 2]! * w;
      }
      const o = (y * width + xx) * 3;
      out[o] = clip8(r);
      out[o + 1] = clip8(g);
      out[o + 2] = clip8(b);
    }
  }
  return out;
}

function resampleVertical(src: Uint8Array, width: number, coefficients: Coefficients, rowOffset: number, height: number): Uint8Array {
  const { bounds, counts, weights, ksize } = coefficients;
  const out = new Uint8Array(width * height * 3);
  const stride = width * 3;
  for (let yy = 0; yy < height; yy++) {
    const ymin = bounds[yy]! - rowOffset;
    const n = counts[yy]!;
    const k = yy * ksize;
    for (let c = 0; c < stride; c++) {
      let sum = PRECISION_ONE / 2;
      for (let y = 0; y < n; y++) sum += src[(ymin + y) * stride + c]! * weights[k + y]!;
      out[yy * stride + c] = clip8(sum);
    }
  }
  return out;
}

/**
 * Resizes with Pillow's bicubic filter (`image.resize((width, height), Image.BICUBIC)`): a = -0.5, antialiased when
 * shrinking (the kernel support grows with the reduction factor), horizontal pass first, both passes in Pillow's
 * 22-bit fixed point with the 8-bit intermediate it uses. It is a transcription of Pillow's `Resample.c`, and matches
 * Pillow 12 exactly (0 levels of difference) on the test fixtures.
 *
 * The spec's position-table resize (§3.4) is PyTorch bicubic without antialias, which this is not.
 *
 * @param image - the source.
 * @param width - the output width, 1 to 16384.
 * @param height - the output height, 1 to 16384.
 * @returns a new image; the source is not modified. A same-size resize returns an unchanged copy.
 * @throws ShowO2Error `ERR_INVALID_ARGUMENT` for a malformed image or size.
 *
 * @example
 * ```ts
 * import { decodeImage, resizeBicubic } from 'showo2';
 *
 * const thumbnail = resizeBicubic(decodeImage(bytes), 64, 48);
 * ```
 */
export function resizeBicubic(image: RgbImage, width: number, height: number): RgbImage {
  checkRgbImage(image, 'image');
  checkSize(width, 'width');
  checkSize(height, 'height');
  return resize(image, width, height);
}

function resize(image: RgbImage, width: number, height: number): RgbImage {
  let data = image.data;
  const needHorizontal = width !== image.width;
  const needVertical = height !== image.height;
  if (!needHorizontal && !needVertical) return { width, height, data: data.slice() };
  // As Pillow does, the horizontal pass only produces the rows the vertical pass will read.
  const vertical = needVertical ? precomputeCoefficients(image.height, height) : undefined;
  let firstRow = 0;
  let rows = image.height;
  if (vertical) {
    firstRow = vertical.bounds[0]!;
    const last = height - 1;
    rows = vertical.bounds[last]! + vertical.counts[last]! - firstRow;
  }
  if (needHorizontal) {
    data = resampleHorizontal(data, image.width, rows, firstRow, width);
    if (vertical) return { width, height, data: resampleVertical(data, width, vertical, firstRow, height) };
    return { width, height, data };
  }
  return { width, height, data: resampleVertical(data, width, vertical!, 0, height) };
}

/**
 * The offset of a centred crop along one axis, as torchvision's `CenterCrop` computes it: `int(round(d / 2))` with
 * Python's round-half-to-even, or a negative offset (zero padding) when the crop is larger than the image.
 */
function centerOffset(size: number, crop: number): number {
  const d = size - crop;
  if (d < 0) return -Math.floor(-d / 2);
  if (d % 2 === 0) return d / 2;
  const k = (d - 1) / 2;
  return k % 2 === 0 ? k : k + 1;
}

/**
 * Cuts the centred `width` x `height` window out of an image, as torchvision's `CenterCrop` does: when the image is
 * odd-sized the extra pixel goes by Python's `round` (half to even), and a crop larger than the image is padded with
 * black (the image sits at `floor((crop - size) / 2)`).
 *
 * @param image - the source.
 * @param width - the crop width, 1 to 16384.
 * @param height - the crop height, 1 to 16384.
 * @returns a new image of exactly `width` x `height`.
 * @throws ShowO2Error `ERR_INVALID_ARGUMENT` for a malformed image or size.
 *
 * @example
 * ```ts
 * import { centerCrop } from 'showo2';
 *
 * const square = centerCrop(image, 432, 432);
 * ```
 */
export function centerCrop(image: RgbImage, width: number, height: number): RgbImage {
  checkRgbImage(image, 'image');
  checkSize(width, 'width');
  checkSize(height, 'height');
  return crop(image, width, height, centerOffset(image.width, width), centerOffset(image.height, height));
}

/** The window at (left, top) of the source, black wherever it falls outside. */
function crop(image: RgbImage, width: number, height: number, left: number, top: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  const x0 = Math.max(0, -left);
  const x1 = Math.min(width, image.width - left);
  for (let y = 0; y < height; y++) {
    const sy = y + top;
    if (sy < 0 || sy >= image.height || x1 <= x0) continue;
    const from = (sy * image.width + x0 + left) * 3;
    data.set(image.data.subarray(from, from + (x1 - x0) * 3), (y * width + x0) * 3);
  }
  return { width, height, data };
}

/**
 * Resizes so the shorter side becomes `size`, keeping the aspect ratio, as torchvision's `Resize(size, BICUBIC)`
 * does on a PIL image: the longer side becomes `int(size * long / short)` (truncated) and the resize is
 * {@link resizeBicubic}. The understanding demo (spec §8.2) follows it with a {@link centerCrop} to `size` x `size`.
 *
 * @param image - the source.
 * @param size - the new length of the shorter side, 1 to 16384.
 * @returns a new image.
 * @throws ShowO2Error `ERR_INVALID_ARGUMENT` for a malformed image or size, or when the longer side would exceed
 * 16384 pixels.
 *
 * @example
 * ```ts
 * import { centerCrop, imageToTensor, resizeShorterSide } from 'showo2';
 *
 * // The understanding demo's preprocessing (spec §8.2).
 * const input = imageToTensor(centerCrop(resizeShorterSide(image, 432), 432, 432));
 * ```
 */
export function resizeShorterSide(image: RgbImage, size: number): RgbImage {
  checkRgbImage(image, 'image');
  checkSize(size, 'size');
  const portrait = image.width <= image.height;
  const [short, long] = portrait ? [image.width, image.height] : [image.height, image.width];
  const newLong = Math.trunc((size * long) / short);
  if (newLong > MAX_IMAGE_SIDE) {
    throw invalidParameterError('size', `a size that keeps the longer side within ${MAX_IMAGE_SIDE} pixels`, size);
  }
  return portrait ? resize(image, size, newLong) : resize(image, newLong, size);
}

/**
 * Fits an image into a black `size` x `size` square without distorting it, as the reference's
 * `resize_and_pad_image` does for video frames (spec §8.3): the side that limits the scale becomes `size`, the other
 * `min(ceil(side * scale), size)`, the resize is {@link resizeBicubic} (Pillow's default for RGB), and the result is
 * pasted at `floor((size - new) / 2)`.
 *
 * @param image - the source.
 * @param size - the side of the square, 1 to 16384.
 * @returns a new `size` x `size` image.
 * @throws ShowO2Error `ERR_INVALID_ARGUMENT` for a malformed image or size.
 *
 * @example
 * ```ts
 * import { imageToTensor, letterbox } from 'showo2';
 *
 * const frameInput = imageToTensor(letterbox(frame, 432));
 * ```
 */
export function letterbox(image: RgbImage, size: number): RgbImage {
  checkRgbImage(image, 'image');
  checkSize(size, 'size');
  const scaleW = size / image.width;
  const scaleH = size / image.height;
  let newWidth = size;
  let newHeight = size;
  if (scaleW < scaleH) newHeight = Math.min(Math.ceil(image.height * scaleW), size);
  else newWidth = Math.min(Math.ceil(image.width * scaleH), size);
  const resized = resize(image, newWidth, newHeight);
  return crop(resized, size, size, -Math.floor((size - newWidth) / 2), -Math.floor((size - newHeight) / 2));
}

/**
 * Each byte's value after torchvision's `ToTensor` then `Normalize(0.5, 0.5)`, in the reference's float32 order:
 * `(x / 255 - 0.5) / 0.5`. Mathematically `x / 127.5 - 1`; computed this way the floats are bit-identical to
 * PyTorch's. (Double rounding is harmless here: a double holds more than twice a float's precision.)
 */
const NORMALIZED = Float32Array.from({ length: 256 }, (_, x) => Math.fround(Math.fround(x / 255) - 0.5) * 2);

/**
 * Converts pixels to the VAE's input: planar `[3, height, width]` float32 in [-1, 1], `x / 127.5 - 1` per byte
 * (ToTensor then Normalize with mean and std 0.5, spec §3.1), bit-identical to the reference's floats.
 *
 * @param image - the pixels.
 * @returns `3 * height * width` floats: all of R, then G, then B, each row-major.
 * @throws ShowO2Error `ERR_INVALID_ARGUMENT` for a malformed image.
 *
 * @example
 * ```ts
 * import { imageToTensor } from 'showo2';
 *
 * const x = imageToTensor({ width: 1, height: 1, data: new Uint8Array([255, 0, 128]) });
 * // Float32Array [1, -1, 0.00392...]
 * ```
 */
export function imageToTensor(image: RgbImage): Float32Array {
  checkRgbImage(image, 'image');
  const plane = image.width * image.height;
  const out = new Float32Array(plane * 3);
  const { data } = image;
  for (let p = 0; p < plane; p++) {
    out[p] = NORMALIZED[data[p * 3]!]!;
    out[plane + p] = NORMALIZED[data[p * 3 + 1]!]!;
    out[2 * plane + p] = NORMALIZED[data[p * 3 + 2]!]!;
  }
  return out;
}

/**
 * Converts the VAE's output, planar `[3, height, width]` floats in [-1, 1], to pixels: `clamp((x + 1) / 2, 0, 1) * 255`
 * in float32, then rounded to the nearest level.
 *
 * The reference truncates instead (`astype(uint8)`, spec §3.1 and §11.11), which darkens every pixel by half a level
 * on average; pass `{ rounding: 'truncate' }` for bit-parity with its images. NaN becomes 0 either way.
 *
 * @param data - `3 * height * width` floats, all of R, then G, then B.
 * @param width - the image width, 1 to 16384.
 * @param height - the image height, 1 to 16384.
 * @param options - see {@link TensorToImageOptions}.
 * @returns the pixels.
 * @throws ShowO2Error `ERR_INVALID_ARGUMENT` for a wrong length, size or option.
 *
 * @example
 * ```ts
 * import { encodePng, tensorToImage } from 'showo2';
 *
 * const image = tensorToImage(decoded, 432, 432);
 * const asReference = tensorToImage(decoded, 432, 432, { rounding: 'truncate' });
 * writeFileSync('out.png', encodePng(image));
 * ```
 */
export function tensorToImage(data: Float32Array, width: number, height: number, options?: TensorToImageOptions): RgbImage {
  checkSize(width, 'width');
  checkSize(height, 'height');
  if (!(data instanceof Float32Array)) throw invalidParameterError('data', 'a Float32Array', data);
  const plane = width * height;
  if (data.length !== plane * 3) {
    throw invalidParameterError('data', `${plane * 3} floats (3 * height * width)`, `${data.length} floats`);
  }
  if (options !== undefined && !isPlainObject(options)) throw invalidParameterError('options', 'an object', options);
  if (options !== undefined) checkOptionKeys(options, ['rounding']);
  const rounding = options?.rounding ?? 'round';
  if (!isOneOf(rounding, ROUNDINGS)) throw invalidParameterError('options.rounding', "one of 'round', 'truncate'", rounding);
  const toByte = rounding === 'round' ? Math.round : Math.trunc;
  const out = new Uint8Array(plane * 3);
  for (let c = 0; c < 3; c++) {
    for (let p = 0; p < plane; p++) {
      const x = data[c * plane + p]!;
      let unit = Math.fround(Math.fround(x + 1) / 2);
      if (!(unit > 0)) unit = 0; // also NaN
      else if (unit > 1) unit = 1;
      out[p * 3 + c] = toByte(Math.fround(unit * 255));
    }
  }
  return { width, height, data: out };
}

/**
 * The frames of decoded pixels `[N, 3, T, H, W]` in [-1, 1] (the VAE's output layout), as `N` lists of `T` images.
 * @internal
 */
export function pixelsToFrames(data: Float32Array, shape: readonly number[], rounding: 'round' | 'truncate'): RgbImage[][] {
  const [n, , t, h, w] = shape as [number, number, number, number, number];
  const plane = h * w;
  const frame = new Float32Array(3 * plane);
  const out: RgbImage[][] = [];
  for (let b = 0; b < n; b++) {
    const frames: RgbImage[] = [];
    for (let f = 0; f < t; f++) {
      for (let c = 0; c < 3; c++) {
        const from = ((b * 3 + c) * t + f) * plane;
        frame.set(data.subarray(from, from + plane), c * plane);
      }
      frames.push(tensorToImage(frame, w, h, { rounding }));
    }
    out.push(frames);
  }
  return out;
}
