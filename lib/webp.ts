/**
 * WebP input: the RIFF container read in TypeScript, the pixels decoded by libwebp compiled to WebAssembly.
 *
 * The decoder is the `webp.wasm` of the `@cwasm/webp` package (libwebp's `WebPDecodeRGBA`, built without any host
 * access: no file system, no network). showo2 compiles it synchronously on first use, which keeps
 * {@link decodeImage} synchronous, and instantiates it afresh for every image: an instance costs about 0.05 ms, its
 * memory is released with it (WebAssembly memory never shrinks, so a reused instance would keep the largest image's
 * size for the life of the process), and a file that trips the decoder cannot affect the next one.
 *
 * What the container reader does itself, before libwebp sees a byte: it walks the chunks (each must fit the file), finds
 * the image's size in the VP8X, VP8 or VP8L header so the size limits apply before anything is allocated, and, for an
 * animation, cuts out the first frame. Decoding a frame is always libwebp's.
 *
 * Pillow (what the reference uses) decodes with libwebp too, so the pixels are the same bit for bit, lossy files
 * included: VP8's reconstruction is exact by specification and libwebp's YUV to RGB conversion has not changed.
 *
 * The package's libwebp is v1.0.2, older than the fix for CVE-2023-4863 (a heap overflow on crafted lossless
 * files). Inside WebAssembly an overflow stays within the instance's own memory, which is thrown away after each
 * image; at worst a crafted file decodes to garbage or fails. A newer build of the same C API can replace the file.
 *
 * @module
 * @internal
 */
import * as fs from 'node:fs';

import { createError, type ShowO2Error } from './errors.js';
import type { RgbImage } from './image.js';

/** What the container says about the image, read before decoding. */
export interface WebpHeader {
  /** The canvas size: the image's, or an animation's. */
  width: number;
  height: number;
  /** `'lossy'` (VP8) or `'lossless'` (VP8L): the image's bitstream, or the first frame's for an animation. */
  kind: 'lossy' | 'lossless';
  /** Whether this is an animation (only its first frame is decoded). */
  animated: boolean;
  /** The bytes libwebp decodes: the whole file, or an animation's first frame (its ALPH, VP8 or VP8L chunks). */
  bitstream: Uint8Array;
  /** Where that bitstream's pixels go on the canvas, and their size. */
  frame: { x: number; y: number; width: number; height: number };
}

function invalidWebp(message: string, cause?: unknown): ShowO2Error {
  return createError('ERR_INVALID_IMAGE', `Invalid WebP: ${message}`, cause === undefined ? undefined : { cause });
}

/** "RIFF", any size, "WEBP": the 12 bytes every WebP file starts with. */
export function hasWebpSignature(bytes: Uint8Array): boolean {
  return bytes.length >= 12 && fourcc(bytes, 0) === 'RIFF' && fourcc(bytes, 8) === 'WEBP';
}

/** Fewer than 12 bytes that could be the start of a WebP file ("RIFF", 4 size bytes, then as much of "WEBP" as is there). */
export function isTruncatedWebpSignature(bytes: Uint8Array): boolean {
  if (bytes.length < 4 || bytes.length >= 12 || fourcc(bytes, 0) !== 'RIFF') return false;
  return Array.from(bytes.subarray(8), (b, i) => b === 'WEBP'.charCodeAt(i)).every(Boolean);
}

function fourcc(bytes: Uint8Array, at: number): string {
  return String.fromCharCode(bytes[at]!, bytes[at + 1]!, bytes[at + 2]!, bytes[at + 3]!);
}

function u24(bytes: Uint8Array, at: number): number {
  return bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16);
}

function u32(bytes: Uint8Array, at: number): number {
  return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;
}

/** A chunk tag for a message: `"VP8L"`, or its bytes in hex when they are not printable ASCII (damaged data). */
function describeTag(tag: string): string {
  if (/^[\x20-\x7e]{4}$/.test(tag)) return `the ${JSON.stringify(tag)} chunk`;
  const hex = Array.from(tag, (c) => c.charCodeAt(0).toString(16).padStart(2, '0')).join(' ');
  return `the chunk with the unprintable tag ${hex}`;
}

/** One RIFF chunk: its tag, where its header starts, and its payload. */
interface Chunk {
  tag: string;
  /** Offset of the chunk header (the tag) in the bytes it was read from. */
  at: number;
  payload: Uint8Array;
}

/**
 * The chunks between `start` and `end`, each padded to an even size as RIFF requires. A chunk that does not fit is
 * the usual sign of a truncated file, so the message says so.
 */
function readChunks(bytes: Uint8Array, start: number, end: number, where: string): Chunk[] {
  const chunks: Chunk[] = [];
  let at = start;
  while (at < end) {
    if (at + 8 > end) throw invalidWebp(`${end - at} stray bytes at byte ${at} ${where}, too few for a chunk header (truncated?)`);
    const tag = fourcc(bytes, at);
    const size = u32(bytes, at + 4);
    if (size > end - at - 8) {
      throw invalidWebp(`${describeTag(tag)} at byte ${at} ${where} declares ${size} bytes, but only ${end - at - 8} follow (truncated?)`);
    }
    chunks.push({ tag, at, payload: bytes.subarray(at + 8, at + 8 + size) });
    at += 8 + size + (size & 1);
  }
  return chunks;
}

/** The size a VP8 (lossy) key frame header gives: RFC 6386 §9.1 and §19.1, checked as libwebp's VP8GetInfo does. */
function vp8Size(chunk: Chunk): [number, number] {
  const data = chunk.payload;
  if (data.length < 10) throw invalidWebp(`the VP8 chunk at byte ${chunk.at} is too short for a frame header (${data.length} bytes)`);
  const tag = data[0]! | (data[1]! << 8) | (data[2]! << 16);
  if (tag & 1) throw invalidWebp(`the VP8 bitstream at byte ${chunk.at} does not start with a key frame`);
  if (((tag >> 1) & 7) > 3) throw invalidWebp(`the VP8 bitstream at byte ${chunk.at} has an unknown profile ${(tag >> 1) & 7}`);
  if (!((tag >> 4) & 1)) throw invalidWebp(`the VP8 frame at byte ${chunk.at} is marked invisible`);
  if (data[3] !== 0x9d || data[4] !== 0x01 || data[5] !== 0x2a) {
    throw invalidWebp(`the VP8 bitstream at byte ${chunk.at} lacks the key frame start code 9d 01 2a`);
  }
  const width = (data[6]! | (data[7]! << 8)) & 0x3fff;
  const height = (data[8]! | (data[9]! << 8)) & 0x3fff;
  if (width === 0 || height === 0) throw invalidWebp(`the VP8 frame header gives a size of ${width}x${height}`);
  return [width, height];
}

/** The size a VP8L (lossless) header gives: the 0x2f signature, then 14 bits each of width - 1 and height - 1. */
function vp8lSize(chunk: Chunk): [number, number] {
  const data = chunk.payload;
  if (data.length < 5) throw invalidWebp(`the VP8L chunk at byte ${chunk.at} is too short for a header (${data.length} bytes)`);
  if (data[0] !== 0x2f) throw invalidWebp(`the VP8L bitstream at byte ${chunk.at} lacks the signature byte 2f`);
  const bits = u32(data, 1);
  const version = bits >>> 29;
  if (version !== 0) throw invalidWebp(`the VP8L bitstream at byte ${chunk.at} has an unknown version ${version}`);
  return [(bits & 0x3fff) + 1, ((bits >>> 14) & 0x3fff) + 1];
}

/** The first VP8 or VP8L chunk of `chunks`, with its size and the ALPH chunk before it, if any. */
function imageChunk(chunks: Chunk[], where: string): { image: Chunk; alpha: Chunk | undefined; width: number; height: number } {
  const index = chunks.findIndex((c) => c.tag === 'VP8 ' || c.tag === 'VP8L');
  if (index < 0) throw invalidWebp(`no image data (a VP8 or VP8L chunk) ${where}`);
  const image = chunks[index]!;
  const alpha = chunks.slice(0, index).find((c) => c.tag === 'ALPH');
  const [width, height] = image.tag === 'VP8 ' ? vp8Size(image) : vp8lSize(image);
  return { image, alpha, width, height };
}

/**
 * Reads the container: the canvas size, the kind of bitstream and what to hand libwebp. Throws ERR_INVALID_IMAGE,
 * naming the chunk and byte, for anything libwebp would refuse at the container level.
 */
export function readWebpHeader(bytes: Uint8Array): WebpHeader {
  const riffSize = u32(bytes, 4);
  if (riffSize < 12) throw invalidWebp(`the RIFF header declares ${riffSize} bytes, too few for any image`);
  if (riffSize > bytes.length - 8) {
    throw invalidWebp(`the file ends early (truncated): the RIFF header declares ${riffSize + 8} bytes, the file has ${bytes.length}`);
  }
  const end = 8 + riffSize; // bytes after the RIFF data are ignored, as libwebp does
  const chunks = readChunks(bytes, 12, end, 'in the file');
  const first = chunks[0]!;
  const whole = bytes.subarray(0, end);
  if (first.tag === 'VP8 ' || first.tag === 'VP8L') {
    const [width, height] = first.tag === 'VP8 ' ? vp8Size(first) : vp8lSize(first);
    const kind = first.tag === 'VP8 ' ? 'lossy' : 'lossless';
    return { width, height, kind, animated: false, bitstream: whole, frame: { x: 0, y: 0, width, height } };
  }
  if (first.tag !== 'VP8X') {
    throw invalidWebp(`expected a VP8, VP8L or VP8X chunk first but found ${describeTag(first.tag)}`);
  }
  // VP8X: flags (ICC 0x20, alpha 0x10, EXIF 0x08, XMP 0x04, animation 0x02), 3 reserved bytes, canvas size - 1.
  if (first.payload.length !== 10) throw invalidWebp(`the VP8X chunk has ${first.payload.length} bytes instead of 10`);
  const animated = (first.payload[0]! & 0x02) !== 0;
  const width = u24(first.payload, 4) + 1;
  const height = u24(first.payload, 7) + 1;
  if (!animated) {
    const found = imageChunk(chunks, 'in the file');
    if (found.width !== width || found.height !== height) {
      throw invalidWebp(`the image is ${found.width}x${found.height} but the VP8X canvas is ${width}x${height}`);
    }
    const kind = found.image.tag === 'VP8 ' ? 'lossy' : 'lossless';
    return { width, height, kind, animated: false, bitstream: whole, frame: { x: 0, y: 0, width, height } };
  }
  // An animation: the first ANMF chunk holds the first frame, a rectangle of the canvas (offsets are stored halved).
  const anmf = chunks.find((c) => c.tag === 'ANMF');
  if (!anmf) throw invalidWebp('the file is marked animated but has no frame (ANMF chunk)');
  if (anmf.payload.length < 16) throw invalidWebp(`the ANMF chunk at byte ${anmf.at} is too short for a frame header`);
  const frame = {
    x: 2 * u24(anmf.payload, 0),
    y: 2 * u24(anmf.payload, 3),
    width: u24(anmf.payload, 6) + 1,
    height: u24(anmf.payload, 9) + 1,
  };
  if (frame.x + frame.width > width || frame.y + frame.height > height) {
    throw invalidWebp(
      `the first frame (${frame.width}x${frame.height} at ${frame.x},${frame.y}) does not fit the ${width}x${height} canvas`,
    );
  }
  const payloadAt = anmf.at + 8;
  const subChunks = readChunks(bytes, payloadAt + 16, payloadAt + anmf.payload.length, `in the first frame (ANMF at byte ${anmf.at})`);
  const found = imageChunk(subChunks, `in the first frame (ANMF at byte ${anmf.at})`);
  if (found.width !== frame.width || found.height !== frame.height) {
    throw invalidWebp(`the first frame's image is ${found.width}x${found.height} but its ANMF header says ${frame.width}x${frame.height}`);
  }
  // libwebp decodes a frame given as its chunks alone: an optional ALPH chunk, then VP8 or VP8L.
  const from = (found.alpha ?? found.image).at;
  const to = found.image.at + 8 + found.image.payload.length;
  const kind = found.image.tag === 'VP8 ' ? 'lossy' : 'lossless';
  return { width, height, kind, animated: true, bitstream: bytes.subarray(from, to), frame };
}

// ---- libwebp, compiled to WebAssembly ----

/**
 * The part of the WebAssembly JS API used here, typed locally: this build's TypeScript libs (ES2022, @types/node 20)
 * do not declare the `WebAssembly` global, and declaring it globally would leak into users' typings.
 */
interface WebAssemblyApi {
  Module: new (bytes: Uint8Array) => CompiledWasm;
  Instance: new (module: CompiledWasm, imports: Record<string, Record<string, () => never>>) => { exports: object };
}
/** A compiled (not yet instantiated) WebAssembly module. */
interface CompiledWasm {
  readonly __compiledWasm?: never;
}
const wasmApi = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;

/** What showo2 uses of @cwasm/webp's webp.wasm: libwebp's decoder and the C allocator (nothing is freed: the instance goes). */
interface LibwebpExports {
  memory: { readonly buffer: ArrayBuffer };
  malloc(size: number): number;
  /** libwebp's `uint8_t* WebPDecodeRGBA(const uint8_t* data, size_t size, int* width, int* height)`: NULL on failure. */
  WebPDecodeRGBA(data: number, size: number, width: number, height: number): number;
}

let compiled: CompiledWasm | undefined;

function libwebpModule(): CompiledWasm {
  if (compiled) return compiled;
  let file = '@cwasm/webp/webp.wasm';
  try {
    file = require.resolve(file);
    compiled = new wasmApi.Module(fs.readFileSync(file));
  } catch (err) {
    throw createError(
      'ERR_INTERNAL',
      `Cannot load the WebP decoder ${file}: ${(err as Error).message}. Reinstall showo2 (npm install) to restore its dependency @cwasm/webp`,
      { cause: err },
    );
  }
  return compiled;
}

/** The decoder's only imports: WASI calls it makes when printing (failed assertions). They end the decode instead. */
function refuseSystemCall(): never {
  throw new Error('libwebp stopped on an internal check');
}

/**
 * Decodes `header.bitstream` with libwebp into RGBA, then drops alpha onto the canvas: RGB kept as stored, as Pillow's
 * `convert("RGB")` does, and black around an animation's first frame (Pillow's canvas starts transparent black).
 */
export function decodeWebp(header: WebpHeader): RgbImage {
  const { bitstream, frame } = header;
  const instance = new wasmApi.Instance(libwebpModule(), {
    wasi_snapshot_preview1: { fd_close: refuseSystemCall, fd_seek: refuseSystemCall, fd_write: refuseSystemCall },
  });
  const lib = instance.exports as unknown as LibwebpExports;
  const input = lib.malloc(bitstream.length);
  const sizes = lib.malloc(8);
  if (input === 0 || sizes === 0) {
    throw createError('ERR_OUT_OF_MEMORY', `Cannot decode a WebP of ${bitstream.length} bytes: the decoder ran out of memory`);
  }
  new Uint8Array(lib.memory.buffer, input, bitstream.length).set(bitstream);
  const what = `the ${header.kind} (${header.kind === 'lossy' ? 'VP8' : 'VP8L'}) image data${header.animated ? ' of the first frame' : ''}`;
  let output: number;
  try {
    output = lib.WebPDecodeRGBA(input, bitstream.length, sizes, sizes + 4);
  } catch (err) {
    throw invalidWebp(`libwebp stopped while decoding ${what}: ${(err as Error).message}`, err);
  }
  if (output === 0) throw invalidWebp(`libwebp could not decode ${what} (${frame.width}x${frame.height}): it is corrupt or incomplete`);
  // Read through a fresh view: decoding may have grown the memory, which detaches earlier views.
  const memory = new DataView(lib.memory.buffer);
  const width = memory.getInt32(sizes, true);
  const height = memory.getInt32(sizes + 4, true);
  if (width !== frame.width || height !== frame.height) {
    throw invalidWebp(`libwebp decoded ${width}x${height} pixels, the header says ${frame.width}x${frame.height}`);
  }
  const rgba = new Uint8Array(lib.memory.buffer, output, width * height * 4);
  const data = new Uint8Array(header.width * header.height * 3);
  for (let y = 0; y < height; y++) {
    let to = ((frame.y + y) * header.width + frame.x) * 3;
    let from = y * width * 4;
    for (let x = 0; x < width; x++, to += 3, from += 4) {
      data[to] = rgba[from]!;
      data[to + 1] = rgba[from + 1]!;
      data[to + 2] = rgba[from + 2]!;
    }
  }
  return { width: header.width, height: header.height, data };
}
