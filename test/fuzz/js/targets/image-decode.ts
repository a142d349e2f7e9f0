// readImageSize and decodeImage on any bytes: PNG (pngjs), JPEG (jpeg-js plus our chroma upsampling) and WebP (our
// RIFF walk plus libwebp in WebAssembly). Every input must give a well-formed RgbImage of the size readImageSize
// read, within the size limits, or ERR_INVALID_IMAGE naming the format; decoding is deterministic; a PNG that decodes
// re-encodes and decodes to the same pixels; and after any input the WebAssembly decoder still decodes a known WebP
// exactly (no corrupted heap). Headers declaring more than 4 megapixels are sized but not decoded: a few hundred
// bytes can declare 40 megapixels, which jpeg-js takes seconds to refuse (legitimate work within the documented
// limits, and the reason readImageSize exists), and each would stall the run.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';

import { decodeImage, encodePng, MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE, readImageSize, type RgbImage } from '../../../../dist/image.js';
import { repoRoot } from '../../../helpers.js';
import { check, expectedError, FuzzFinding, type FuzzTarget, type Rng } from '../engine.js';
import { mutate } from '../mutate.js';

const imagesDir = path.join(repoRoot, 'test', 'fixtures', 'images');
const PNG_SIGNATURE = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** The encoded image fixtures (PNG, JPEG, WebP written by Pillow and cwebp). */
export function imageSeeds(): Uint8Array[] {
  return fs
    .readdirSync(imagesDir)
    .filter((name) => /\.(png|jpe?g|webp)$/.test(name))
    .sort()
    .map((name) => new Uint8Array(fs.readFileSync(path.join(imagesDir, name))));
}

const crc32 = (data: Uint8Array): number => zlib.crc32(data);

const u32be = (d: Uint8Array, at: number): number => ((d[at]! << 24) >>> 0) + ((d[at + 1]! << 16) | (d[at + 2]! << 8) | d[at + 3]!);

function putU32be(d: Uint8Array, at: number, v: number): void {
  d[at] = v >>> 24;
  d[at + 1] = (v >>> 16) & 0xff;
  d[at + 2] = (v >>> 8) & 0xff;
  d[at + 3] = v & 0xff;
}

function isPng(d: Uint8Array): boolean {
  return d.length >= 8 && PNG_SIGNATURE.every((b, i) => d[i] === b);
}

function isWebp(d: Uint8Array): boolean {
  return d.length >= 12 && String.fromCharCode(...d.subarray(0, 4)) === 'RIFF' && String.fromCharCode(...d.subarray(8, 12)) === 'WEBP';
}

interface PngChunk {
  type: string;
  data: Uint8Array;
}

function pngChunks(d: Uint8Array): PngChunk[] | undefined {
  if (!isPng(d)) return undefined;
  const chunks: PngChunk[] = [];
  for (let at = 8; at + 12 <= d.length; ) {
    const length = u32be(d, at);
    if (at + 12 + length > d.length) return chunks;
    chunks.push({ type: String.fromCharCode(...d.subarray(at + 4, at + 8)), data: d.subarray(at + 8, at + 8 + length) });
    at += 12 + length;
  }
  return chunks;
}

function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  putU32be(out, 0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  putU32be(out, 8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Recomputes every complete PNG chunk's CRC, and a WebP's RIFF size, so mutations get past those checks. */
function repair(d: Uint8Array, rng: Rng): Uint8Array {
  if (isPng(d)) {
    const out = d.slice();
    for (let at = 8; at + 12 <= out.length; ) {
      const length = u32be(out, at);
      if (at + 12 + length > out.length) break;
      putU32be(out, at + 8 + length, crc32(out.subarray(at + 4, at + 8 + length)));
      at += 12 + length;
    }
    return out;
  }
  if (isWebp(d) && rng.chance(0.8)) {
    const out = d.slice();
    const size = out.length - 8;
    out[4] = size & 0xff;
    out[5] = (size >>> 8) & 0xff;
    out[6] = (size >>> 16) & 0xff;
    out[7] = size >>> 24;
    return out;
  }
  return d;
}

// Colour types and the bit depths PNG allows for each (and some it does not).
const PNG_DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };

/**
 * PNG-aware mutations: a fresh IHDR (any colour type, bit depth, interlace, small size) with image data of the size
 * it needs, or the decompressed image data of an existing PNG mutated (filter bytes, samples) and recompressed.
 * Both give well-formed chunks with valid CRCs, so the input reaches pngjs's unfiltering and sample conversion.
 */
function mutatePng(d: Uint8Array, rng: Rng): Uint8Array | undefined {
  const chunks = pngChunks(d);
  if (!chunks || chunks.length === 0 || chunks[0]!.type !== 'IHDR' || chunks[0]!.data.length !== 13) return undefined;
  const ihdr = chunks[0]!.data.slice();
  let raw: Uint8Array;
  if (rng.chance(0.5)) {
    const colourType = rng.chance(0.9) ? rng.pick([0, 2, 3, 4, 6]) : rng.below(8);
    const depth = rng.chance(0.9) ? rng.pick(PNG_DEPTHS[colourType] ?? [8]) : rng.pick([0, 3, 5, 7, 9, 32]);
    const width = 1 + rng.below(rng.chance(0.8) ? 24 : 300);
    const height = 1 + rng.below(rng.chance(0.8) ? 24 : 300);
    const interlace = rng.chance(0.7) ? 0 : rng.chance(0.9) ? 1 : 2;
    putU32be(ihdr, 0, width);
    putU32be(ihdr, 4, height);
    ihdr[8] = depth;
    ihdr[9] = colourType;
    ihdr[12] = interlace;
    const channels = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[colourType] ?? 1;
    const rowBytes = 1 + Math.ceil((width * channels * depth) / 8);
    // Non-interlaced size; an interlaced image needs a little more, which the mutations below may or may not give.
    raw = new Uint8Array(rowBytes * height + (interlace ? rowBytes * 8 : 0));
    for (let i = 0; i < raw.length; i++) raw[i] = rng.chance(0.5) ? rng.below(256) : 0;
    for (let y = 0; y < height; y++) raw[y * rowBytes] = rng.chance(0.9) ? rng.below(5) : rng.below(256);
  } else {
    try {
      raw = new Uint8Array(zlib.inflateSync(concat(chunks.filter((c) => c.type === 'IDAT').map((c) => c.data))));
    } catch {
      return undefined;
    }
    if (raw.length > 1 << 20) return undefined;
  }
  if (rng.chance(0.7)) raw = mutate(raw, { rng, dictionary: [], other: () => raw, maxLength: 1 << 20 });
  const rest = chunks.slice(1).filter((c) => c.type !== 'IDAT' && c.type !== 'IEND');
  // A palette image needs a PLTE chunk; give it one of a random size now and then.
  if (ihdr[9] === 3 && !rest.some((c) => c.type === 'PLTE') && rng.chance(0.8)) {
    const entries = 1 + rng.below(256);
    const plte = new Uint8Array(entries * 3).map(() => rng.below(256));
    rest.unshift({ type: 'PLTE', data: plte });
  }
  const idat = new Uint8Array(zlib.deflateSync(raw, { level: 1 }));
  return concat([PNG_SIGNATURE, pngChunk('IHDR', ihdr), ...rest.map((c) => pngChunk(c.type, c.data)), pngChunk('IDAT', idat), pngChunk('IEND', new Uint8Array(0))]);
}

function sameImage(a: RgbImage, b: RgbImage): boolean {
  return a.width === b.width && a.height === b.height && Buffer.compare(Buffer.from(a.data), Buffer.from(b.data)) === 0;
}

function checkDecoded(image: RgbImage): void {
  const { width, height, data } = image;
  check(Number.isInteger(width) && Number.isInteger(height) && width >= 1 && height >= 1, `size ${width}x${height}`);
  check(width <= MAX_IMAGE_SIDE && height <= MAX_IMAGE_SIDE && width * height <= MAX_IMAGE_PIXELS, `size ${width}x${height} over the limits`);
  check(data instanceof Uint8Array && data.length === width * height * 3, () => `data of ${data?.length} bytes for ${width}x${height}`);
}

function format(d: Uint8Array): string {
  if (isPng(d)) return `png:d${d[24]}c${d[25]}i${d[28]}`;
  if (d[0] === 0xff && d[1] === 0xd8) return 'jpeg';
  if (isWebp(d)) return `webp:${String.fromCharCode(...d.subarray(12, 16))}`;
  return 'other';
}

/** Above this many declared pixels an input is only sized, not decoded. */
const DECODE_PIXELS = 1 << 22;

// A WebP decoded at setup; decoded again now and then to show the WebAssembly decoder's state survived every input.
let canary: { bytes: Uint8Array; image: RgbImage } | undefined;
let execs = 0;

export const imageDecodeTarget: FuzzTarget = {
  name: 'image_decode',
  description: 'decodeImage (PNG, JPEG, WebP): a valid RgbImage or ERR_INVALID_IMAGE; deterministic; PNG round trip; WASM state intact',
  maxLength: 64 * 1024,
  dictionary: [
    '\\x89PNG\\x0d\\x0a\\x1a\\x0a', 'IHDR', 'IDAT', 'IEND', 'PLTE', 'tRNS', 'gAMA', 'sRGB', 'iCCP', 'acTL', 'fcTL', 'fdAT',
    '\\xff\\xd8\\xff', '\\xff\\xc0', '\\xff\\xc1', '\\xff\\xc2', '\\xff\\xc4', '\\xff\\xdb', '\\xff\\xda', '\\xff\\xdd', '\\xff\\xd9',
    '\\xff\\xe0', '\\xff\\xee', '\\xff\\xfe', '\\xff\\xff', 'JFIF\\x00', 'Adobe',
    'RIFF', 'WEBP', 'VP8 ', 'VP8L', 'VP8X', 'ALPH', 'ANIM', 'ANMF', 'ICCP', 'EXIF', 'XMP ', '\\x9d\\x01\\x2a', '\\x2f',
  ],
  seeds: imageSeeds,
  mutate: (d, rng) => mutatePng(d, rng),
  repair,
  setup: async () => {
    const bytes = new Uint8Array(fs.readFileSync(path.join(imagesDir, 'photo.webp')));
    canary = { bytes, image: decodeImage(bytes) };
  },
  run(data) {
    execs++;
    let image: RgbImage;
    try {
      // The header first: readImageSize must agree with what decodeImage then produces. Images over DECODE_PIXELS are
      // not decoded: their cost is only their size (seconds each, see the module comment), not new code paths.
      const size = readImageSize(data);
      check(Number.isInteger(size.width) && Number.isInteger(size.height) && size.width >= 1 && size.height >= 1, `readImageSize gave ${size.width}x${size.height}`);
      if (size.width * size.height > DECODE_PIXELS) return `large:${size.format}`;
      image = decodeImage(data);
      check(image.width === size.width && image.height === size.height, () => `readImageSize said ${size.width}x${size.height}, decodeImage gave ${image.width}x${image.height}`);
    } catch (err) {
      return expectedError(err, ['ERR_INVALID_IMAGE'], /PNG|JPEG|WebP|image/);
    } finally {
      if (canary && execs % 256 === 0 && !sameImage(decodeImage(canary.bytes), canary.image)) {
        throw new FuzzFinding('photo.webp no longer decodes to the same pixels after this input');
      }
    }
    checkDecoded(image);
    // Every 16th input by content (so --reproduce repeats it): decode again; uninitialised memory would differ.
    if (crc32(data) % 16 === 0) check(sameImage(decodeImage(data), image), 'decoding the same bytes twice gave different pixels');
    if (isPng(data) && image.width * image.height <= 1 << 16) {
      check(sameImage(decodeImage(encodePng(image)), image), 'encodePng then decodeImage changed the pixels');
    }
    const bucket = (n: number): string => (n <= 4 ? String(n) : n <= 64 ? 's' : 'l');
    return `ok:${format(data)}:${bucket(image.width)}x${bucket(image.height)}`;
  },
};
