// Image decoding, encoding, resampling and tensor conversion (lib/image.ts), checked against the Pillow fixtures in
// test/fixtures/images/ (tools/fixtures/make_image_fixtures.py writes them; manifest.json says how each was made).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';

import test from 'ava';

import {
  centerCrop,
  decodeImage,
  DEFAULT_JPEG_QUALITY,
  encodeJpeg,
  encodePng,
  imageToTensor,
  letterbox,
  MAX_IMAGE_SIDE,
  readImageSize,
  resizeBicubic,
  resizeShorterSide,
  ShowO2Error,
  tensorToImage,
  writeImage,
  type RgbImage,
} from 'showo2';

import { repoRoot, tempDir } from '../helpers.js';

const imagesDir = path.join(repoRoot, 'test', 'fixtures', 'images');

interface Expected {
  expected: string;
  width: number;
  height: number;
  note: string;
}
interface OpCase extends Expected {
  source: string;
  op: 'resize' | 'resizeShorterSide' | 'understanding' | 'centerCrop' | 'letterbox';
  args: number[];
}
interface Manifest {
  inputs: Record<string, string>;
  decode: Record<string, Expected>;
  ops: OpCase[];
}

const manifest = JSON.parse(fs.readFileSync(path.join(imagesDir, 'manifest.json'), 'utf8')) as Manifest;

function read(name: string): Buffer {
  return fs.readFileSync(path.join(imagesDir, name));
}

function expectedImage(e: Expected): RgbImage {
  return { width: e.width, height: e.height, data: new Uint8Array(read(e.expected)) };
}

interface Difference {
  max: number;
  mean: number;
}

function difference(a: Uint8Array, b: Uint8Array): Difference {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let max = 0;
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    sum += d;
    if (d > max) max = d;
  }
  return { max, mean: sum / a.length };
}

function solid(width: number, height: number, rgb: [number, number, number]): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) data.set(rgb, p * 3);
  return { width, height, data };
}

// ---- Decoding ----

// PNG decoding is lossless, so it must equal Pillow's Image.open(f).convert("RGB") exactly: alpha dropped (not
// composited), gray replicated, palettes expanded, 16-bit reduced to the high byte, colour-keyed pixels kept.
for (const name of Object.keys(manifest.decode).filter((n) => n.endsWith('.png'))) {
  test(`decodeImage(${name}) equals Pillow's convert("RGB") exactly`, (t) => {
    const e = manifest.decode[name]!;
    const image = decodeImage(read(name));
    t.is(image.width, e.width);
    t.is(image.height, e.height);
    t.deepEqual(difference(image.data, expectedImage(e).data), { max: 0, mean: 0 }, e.note);
  });
}

// showo2 upsamples chroma and converts YCbCr to RGB exactly as libjpeg-turbo does, but the IDCT is jpeg-js's, whose
// rounding differs from libjpeg-turbo's islow IDCT: a few levels on a few pixels. The bound is 3 levels, and a small
// mean; repeating chroma samples instead (what jpeg-js does by itself) puts 4:2:0 off by up to 34 levels here.
const jpegTolerance: Record<string, Difference> = {
  'photo.jpg': { max: 3, mean: 0.2 },
  'photo422.jpg': { max: 3, mean: 0.2 },
  'photo444.jpg': { max: 3, mean: 0.2 },
  'progressive.jpg': { max: 3, mean: 0.2 },
  'narrow.jpg': { max: 3, mean: 0.3 },
  'gray.jpg': { max: 1, mean: 0.1 },
};
for (const [name, bound] of Object.entries(jpegTolerance)) {
  test(`decodeImage(${name}) is within ${bound.max} levels (mean ${bound.mean}) of Pillow`, (t) => {
    const e = manifest.decode[name]!;
    const image = decodeImage(read(name));
    t.is(image.width, e.width);
    t.is(image.height, e.height);
    const d = difference(image.data, expectedImage(e).data);
    t.true(d.max <= bound.max, `max ${d.max}`);
    t.true(d.mean <= bound.mean, `mean ${d.mean}`);
  });
}

// WebP is decoded by libwebp, as in Pillow, so every fixture must equal Pillow's convert("RGB") exactly. For the lossless
// ones that is a given; for the lossy ones (VP8, whose reconstruction is exact by specification, then libwebp's
// fixed-point YUV to RGB) the measured difference is 0 levels too, so the stated tolerance is 0. Alpha is dropped
// (rgba_lossless.webp stores black under its transparent column, and so does the result), and an animation gives its
// first frame on a black canvas.
const webpNames = Object.keys(manifest.decode).filter((n) => n.endsWith('.webp'));
test('the WebP fixtures cover lossy, lossless, alpha, odd sizes and animations', (t) => {
  t.deepEqual(webpNames.sort(), [
    'animated.webp',
    'animated_offset.webp',
    'odd.webp',
    'photo.webp',
    'photo_lossless.webp',
    'pixel.webp',
    'rgba.webp',
    'rgba_lossless.webp',
  ]);
});
for (const name of webpNames) {
  test(`decodeImage(${name}) equals Pillow's convert("RGB") exactly`, (t) => {
    const e = manifest.decode[name]!;
    const image = decodeImage(read(name));
    t.is(image.width, e.width);
    t.is(image.height, e.height);
    t.deepEqual(difference(image.data, expectedImage(e).data), { max: 0, mean: 0 }, e.note);
  });
}

test('a lossless WebP gives the pixels of the PNG it was made from; alpha is dropped, not composited', (t) => {
  t.deepEqual(decodeImage(read('photo_lossless.webp')), decodeImage(read('photo.png')));
  // Alpha ramps from 0 (left column) to 255 (right): compositing would change every column but the last. The lossless
  // encoder stored the PNG's colours except under alpha 0, where it wrote black (Pillow's default exact=False).
  const webp = decodeImage(read('rgba_lossless.webp'));
  const png = decodeImage(read('rgba.png'));
  for (let y = 0; y < png.height; y++) {
    const row = (image: RgbImage) => image.data.subarray(y * 37 * 3, (y + 1) * 37 * 3);
    t.deepEqual(row(webp).subarray(3), row(png).subarray(3), `row ${y}, alpha > 0`);
    t.deepEqual(Array.from(row(webp).subarray(0, 3)), [0, 0, 0], `row ${y}, alpha 0`);
  }
});

test("an animated WebP's first frame sits on a black canvas where it does not reach", (t) => {
  const image = decodeImage(read('animated_offset.webp'));
  t.deepEqual([image.width, image.height], [24, 20]);
  const at = (x: number, y: number) => Array.from(image.data.subarray((y * 24 + x) * 3, (y * 24 + x) * 3 + 3));
  t.deepEqual(at(0, 0), [0, 0, 0]);
  t.deepEqual(at(3, 6), [0, 0, 0]); // left of the 10x8 frame at (4, 6)
  t.deepEqual(at(14, 13), [0, 0, 0]); // right of it and below
  t.notDeepEqual(at(13, 13), [0, 0, 0]); // its bottom-right pixel
});

test('decodeImage accepts a plain Uint8Array and a Buffer that is a view into a larger pool', (t) => {
  const bytes = read('photo.png');
  const pooled = Buffer.concat([Buffer.alloc(5, 7), bytes]).subarray(5);
  t.deepEqual(decodeImage(new Uint8Array(bytes)), decodeImage(pooled));
});

test('encodePng then decodeImage gives back the same pixels', (t) => {
  const image = decodeImage(read('photo.png'));
  const png = encodePng(image);
  t.true(png instanceof Uint8Array);
  t.deepEqual(Array.from(png.subarray(0, 8)), [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  t.deepEqual(decodeImage(png), image);
  const pixel: RgbImage = { width: 1, height: 1, data: new Uint8Array([1, 2, 3]) };
  t.deepEqual(decodeImage(encodePng(pixel)), pixel);
});

// ---- JPEG output ----

/** Smooth content (gradients and a slow wave), what JPEG is made for; noise would measure the noise. */
function gradient(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      data.set([(x * 255) / (width - 1), (y * 255) / (height - 1), 128 + Math.round(60 * Math.sin(x / 6))], (y * width + x) * 3);
    }
  }
  return { width, height, data };
}

/** The JPEG's SOF0 frame header: size and each component's sampling factors. */
function jpegFrame(bytes: Uint8Array): { width: number; height: number; sampling: number[] } {
  const b = Buffer.from(bytes);
  let at = 2;
  while (b[at + 1] !== 0xc0) at += 2 + b.readUInt16BE(at + 2);
  return { height: b.readUInt16BE(at + 5), width: b.readUInt16BE(at + 7), sampling: [0, 1, 2].map((c) => b[at + 11 + c * 3]!) };
}

// Measured on the 64x48 gradient (max / mean levels after decodeImage): quality 50: 13 / 2.0, 90: 5 / 0.96,
// 100: 3 / 0.37. The bounds leave a little room over those.
const jpegRoundTrip: [quality: number | undefined, max: number, mean: number][] = [
  [50, 16, 2.5],
  [undefined, 7, 1.2], // the default, 90
  [100, 4, 0.5],
];
for (const [quality, max, mean] of jpegRoundTrip) {
  test(`encodeJpeg at quality ${quality ?? 'default'} round-trips through decodeImage within ${max} levels (mean ${mean})`, (t) => {
    const image = gradient(64, 48);
    const jpg = encodeJpeg(image, quality === undefined ? undefined : { quality });
    t.true(jpg instanceof Uint8Array);
    t.deepEqual(Array.from(jpg.subarray(0, 3)), [0xff, 0xd8, 0xff]);
    t.deepEqual(jpegFrame(jpg), { width: 64, height: 48, sampling: [0x11, 0x11, 0x11] }); // baseline, 4:4:4
    const back = decodeImage(jpg);
    t.is(back.width, 64);
    t.is(back.height, 48);
    const d = difference(back.data, image.data);
    t.true(d.max <= max, `max ${d.max}`);
    t.true(d.mean <= mean, `mean ${d.mean}`);
  });
}

test('JPEG quality trades size for fidelity; the default is 90', (t) => {
  const image = decodeImage(read('photo.png'));
  const sizes = [1, 50, 90, 100].map((quality) => encodeJpeg(image, { quality }).length);
  t.deepEqual([...sizes].sort((a, b) => a - b), sizes);
  t.is(DEFAULT_JPEG_QUALITY, 90);
  t.deepEqual(encodeJpeg(image), encodeJpeg(image, { quality: 90 }));
  t.deepEqual(encodeJpeg(image, {}), encodeJpeg(image, { quality: 90 }));
  // Odd sizes and a single pixel work (the encoder pads the edge blocks).
  t.true(difference(decodeImage(encodeJpeg(solid(1, 1, [200, 30, 90]), { quality: 100 })).data, solid(1, 1, [200, 30, 90]).data).max <= 1);
  const odd = decodeImage(encodeJpeg(solid(13, 7, [10, 120, 250])));
  t.true(difference(odd.data, solid(13, 7, [10, 120, 250]).data).max <= 2);
});

test('writeImage picks PNG or JPEG by the extension, in any case', async (t) => {
  const dir = tempDir();
  const image = decodeImage(read('photo.png'));
  await writeImage(path.join(dir, 'a.png'), image);
  await writeImage(path.join(dir, 'b.JPG'), image, { quality: 80 });
  await writeImage(path.join(dir, 'c.jpeg'), image);
  await writeImage(path.join(dir, 'd.PNG'), image, { quality: 5 }); // quality is checked but unused for PNG
  t.deepEqual(fs.readFileSync(path.join(dir, 'a.png')), Buffer.from(encodePng(image)));
  t.deepEqual(fs.readFileSync(path.join(dir, 'b.JPG')), Buffer.from(encodeJpeg(image, { quality: 80 })));
  t.deepEqual(fs.readFileSync(path.join(dir, 'c.jpeg')), Buffer.from(encodeJpeg(image)));
  t.deepEqual(decodeImage(fs.readFileSync(path.join(dir, 'd.PNG'))), image);
  await writeImage(path.join(dir, 'a.png'), solid(2, 2, [1, 2, 3])); // replaces
  t.deepEqual(decodeImage(fs.readFileSync(path.join(dir, 'a.png'))), solid(2, 2, [1, 2, 3]));
});

test('writeImage refuses other extensions, bad options and unwritable paths, before or without writing', async (t) => {
  const dir = tempDir();
  const image = solid(2, 2, [0, 0, 0]);
  const bad: [string, unknown, string][] = [
    ['out.webp', undefined, `Expected a path ending in .png, .jpg or .jpeg (the extension .webp; WebP output is not supported) for path but received "${path.join(dir, 'out.webp')}" (string)`],
    ['out', undefined, `Expected a path ending in .png, .jpg or .jpeg (no extension; WebP output is not supported) for path but received "${path.join(dir, 'out')}" (string)`],
    ['out.jpg', { quality: 0 }, 'Expected an integer from 1 to 100 for options.quality but received 0 (number)'],
    ['out.png', { quality: '90' }, 'Expected an integer from 1 to 100 for options.quality but received "90" (string)'],
  ];
  for (const [name, options, message] of bad) {
    await t.throwsAsync(writeImage(path.join(dir, name), image, options as never), { instanceOf: ShowO2Error, code: 'ERR_INVALID_ARGUMENT', message });
  }
  await t.throwsAsync(writeImage('', image), { code: 'ERR_INVALID_ARGUMENT', message: 'Expected a file path for path but received "" (string)' });
  await t.throwsAsync(writeImage(path.join(dir, 'x.png'), { ...image, width: 3 }), { code: 'ERR_INVALID_ARGUMENT', message: /^Expected 18 bytes/ });
  t.deepEqual(fs.readdirSync(dir), []);
  const missing = path.join(dir, 'no', 'such', 'folder.png');
  const err = await t.throwsAsync(writeImage(missing, image), { instanceOf: ShowO2Error, code: 'ERR_FILE_NOT_FOUND' });
  t.true(err!.message.startsWith(`Cannot write the image ${missing}: ENOENT`), err!.message);
  fs.mkdirSync(path.join(dir, 'folder.png'));
  const isDir = await t.throwsAsync(writeImage(path.join(dir, 'folder.png'), image), { instanceOf: ShowO2Error, code: 'ERR_FILE_READ' });
  t.regex(isDir!.message, /^Cannot write the image .*folder\.png: EISDIR/);
});

// ---- Bad input: always ERR_INVALID_IMAGE, promptly ----

function invalidImage(t: import('ava').ExecutionContext, bytes: Uint8Array, message: string | RegExp): void {
  const err = t.throws(() => decodeImage(bytes), { instanceOf: ShowO2Error });
  t.is(err?.code, 'ERR_INVALID_IMAGE');
  if (typeof message === 'string') t.is(err?.message, message);
  else t.regex(err?.message ?? '', message);
}

test('non-image bytes name what the file starts with', (t) => {
  invalidImage(t, Buffer.from('hello world'), 'Unsupported image format: expected PNG, JPEG or WebP, but the file starts with bytes 68 65 6c 6c 6f 20 77 6f');
  invalidImage(t, Buffer.from('GIF89a'), /^Unsupported image format: .* 47 49 46 38 39 61$/);
  invalidImage(t, new Uint8Array(0), 'Cannot decode an image from 0 bytes');
});

test('a PNG truncated anywhere is refused', (t) => {
  const png = read('photo.png');
  invalidImage(t, png.subarray(0, 8), 'Invalid PNG: the IHDR chunk is missing or truncated');
  for (const fraction of [0.1, 0.5, 0.9]) {
    invalidImage(t, png.subarray(0, Math.floor(png.length * fraction)), 'Invalid PNG: the file ends early (truncated)');
  }
  invalidImage(t, png.subarray(0, png.length - 12), 'Invalid PNG: the file ends early (truncated)'); // no IEND
});

/** A PNG file from IHDR fields and the (filtered) image data, with valid CRCs: for hand-made damaged images. */
function pngFile(width: number, height: number, depth: number, colourType: number, interlace: number, raw: Uint8Array): Buffer {
  const chunk = (type: string, data: Uint8Array): Buffer => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(zlib.crc32(body), 8 + data.length);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([depth, colourType, 0, 0, interlace], 8);
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', new Uint8Array(0))]);
}

// Found by the JavaScript fuzzer (test/fuzz/js, image_decode): pngjs filled the missing rows of short image data
// with whatever memory it was given, so decoding the same file twice gave different pixels (and leaked old memory).
test('a PNG whose image data is too short is refused, not padded with stale memory', (t) => {
  // 232x1 RGBA needs 1 + 232 * 4 = 929 bytes; give it 256.
  const short = pngFile(232, 1, 8, 6, 0, new Uint8Array(256).fill(0x11));
  for (let i = 0; i < 3; i++) {
    invalidImage(t, short, 'Invalid PNG: the image data ends early (truncated): 256 of the 929 bytes a 232x1 image needs');
  }
  // Interlaced: the seven Adam7 passes of a 5x3 gray image are 1x1, 1x1, empty, 1x1, 3x1, 2x2 and 5x1 pixels, so
  // with a filter byte per row they need 2 + 2 + 0 + 2 + 4 + 6 + 6 = 22 bytes.
  invalidImage(t, pngFile(5, 3, 8, 0, 1, new Uint8Array(21)), /^Invalid PNG: the image data ends early \(truncated\): 21 of the 22 bytes/);
  const exact = decodeImage(pngFile(5, 3, 8, 0, 1, new Uint8Array(22).fill(0)));
  t.deepEqual([exact.width, exact.height, exact.data.length], [5, 3, 45]);
  // Data past what the image needs is ignored (as Pillow does), up to a bound.
  t.is(decodeImage(pngFile(2, 2, 8, 2, 0, new Uint8Array(14 + 1000))).data.length, 12);
});

test('an interlaced PNG puts every Adam7 pass where it belongs, from exactly the data the passes need', (t) => {
  const passes = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]] as const;
  for (const [width, height] of [[5, 3], [1, 1], [9, 9], [17, 4], [3, 20]] as const) {
    const raw: number[] = [];
    const expected = new Array<number>(width * height).fill(-1);
    let value = 1;
    for (const [x0, y0, dx, dy] of passes) {
      const w = Math.ceil((width - x0) / dx);
      const h = Math.ceil((height - y0) / dy);
      if (w <= 0 || h <= 0) continue;
      for (let y = 0; y < h; y++) {
        raw.push(0); // filter: none
        for (let x = 0; x < w; x++, value++) {
          raw.push(value % 256);
          expected[(y0 + y * dy) * width + x0 + x * dx] = value % 256;
        }
      }
    }
    const image = decodeImage(pngFile(width, height, 8, 0, 1, Uint8Array.from(raw)));
    t.deepEqual(Array.from({ length: width * height }, (_, p) => image.data[p * 3]), expected, `${width}x${height}`);
  }
});

test('a PNG whose image data inflates far past the image (a decompression bomb) is refused before pngjs inflates it', (t) => {
  // pngjs inflates interlaced data without a bound: 8 MB of zeros for a 1x1 image would all be allocated.
  invalidImage(t, pngFile(1, 1, 8, 0, 1, new Uint8Array(8 << 20)), /^Invalid PNG: the image data inflates to more than the 2 bytes a 1x1 image needs/);
  const garbage = pngFile(4, 4, 8, 0, 0, new Uint8Array(20));
  garbage[41]! ^= 0xff; // inside the zlib stream: an invalid deflate block type or distance
  t.throws(() => decodeImage(garbage), { instanceOf: ShowO2Error, code: 'ERR_INVALID_IMAGE' });
});

test('readImageSize gives every fixture\'s format and size from its header, as decodeImage would', (t) => {
  for (const name of fs.readdirSync(imagesDir).filter((n) => /\.(png|jpe?g|webp)$/.test(n))) {
    const bytes = read(name);
    const { width, height } = decodeImage(bytes);
    const format = name.endsWith('.png') ? 'png' : name.endsWith('.webp') ? 'webp' : 'jpeg';
    t.deepEqual(readImageSize(bytes), { format, width, height }, name);
  }
  // The first bytes are enough for PNG and JPEG headers.
  t.deepEqual(readImageSize(read('photo.png').subarray(0, 24)), { format: 'png', width: 37, height: 29 });
  invalidImage(t, Buffer.from('hello world'), /^Unsupported image format/);
  t.throws(() => readImageSize(Buffer.from('hello world')), { code: 'ERR_INVALID_IMAGE', message: /^Unsupported image format/ });
  t.throws(() => readImageSize('photo.png' as unknown as Uint8Array), { code: 'ERR_INVALID_ARGUMENT' });
});

// Found by the JavaScript fuzzer: 676 bytes whose progressive frame header declares 6426x5912 (38 megapixels, within
// the limits) cost jpeg-js seconds and hundreds of MB before it finds the data is damaged. readImageSize is how a
// service refuses such input cheaply; the model decodes images off the event loop (see event-loop.test.ts).
test('a tiny file that declares a large image: readImageSize tells at once, decodeImage refuses it', (t) => {
  const bytes = fs.readFileSync(path.join(imagesDir, 'fuzz', 'progressive-38mp-header.jpg'));
  t.is(bytes.length, 676);
  t.deepEqual(readImageSize(bytes), { format: 'jpeg', width: 6426, height: 5912 });
  invalidImage(t, bytes, /^Invalid JPEG: /);
});

test('a PNG with a damaged chunk is refused', (t) => {
  const png = Buffer.from(read('photo.png'));
  png[30]! ^= 0xff; // IHDR's CRC no longer matches its data
  invalidImage(t, png, /^Invalid PNG: /);
});

test('a JPEG truncated anywhere is refused', (t) => {
  for (const name of ['photo.jpg', 'progressive.jpg']) {
    const jpg = read(name);
    invalidImage(t, jpg.subarray(0, 3), 'Invalid JPEG: no frame header (SOF marker) before the image data');
    for (const fraction of [0.1, 0.5, 0.9, 0.99]) invalidImage(t, jpg.subarray(0, Math.floor(jpg.length * fraction)), /^Invalid JPEG: /);
  }
});

test('a JPEG signature followed by noise is refused', (t) => {
  const noise = new Uint8Array(5000).map((_, i) => (i * 7919 + 13) % 251);
  noise.set([0xff, 0xd8, 0xff]);
  invalidImage(t, noise, /^Invalid JPEG: /);
});

/** A WebP file's chunks after its 12-byte header, and the file rebuilt from (edited) chunks with every size recomputed. */
type RiffChunk = [tag: string, payload: Buffer];
function webpChunks(bytes: Buffer): RiffChunk[] {
  const chunks: RiffChunk[] = [];
  for (let at = 12; at < bytes.length; ) {
    const size = bytes.readUInt32LE(at + 4);
    chunks.push([bytes.toString('latin1', at, at + 4), bytes.subarray(at + 8, at + 8 + size)]);
    at += 8 + size + (size & 1);
  }
  return chunks;
}
function webpFile(chunks: RiffChunk[]): Buffer {
  const parts = chunks.map(([tag, payload]) => {
    const header = Buffer.alloc(8);
    header.write(tag, 'latin1');
    header.writeUInt32LE(payload.length, 4);
    return Buffer.concat([header, payload, Buffer.alloc(payload.length & 1)]);
  });
  const body = Buffer.concat([Buffer.from('WEBP'), ...parts]);
  const header = Buffer.alloc(8);
  header.write('RIFF');
  header.writeUInt32LE(body.length, 4);
  return Buffer.concat([header, body]);
}
function editWebp(name: string, edit: (tag: string, payload: Buffer) => Buffer): Buffer {
  return webpFile(webpChunks(read(name)).map(([tag, payload]) => [tag, edit(tag, Buffer.from(payload))]));
}

test('the WebP test helpers rebuild a fixture byte for byte', (t) => {
  for (const name of webpNames) t.deepEqual(webpFile(webpChunks(read(name))), read(name), name);
});

test('a WebP truncated anywhere is refused, naming the declared and actual sizes', (t) => {
  const webp = read('photo_lossless.webp');
  for (const length of [4, 9, 11]) {
    invalidImage(t, webp.subarray(0, length), `Invalid WebP: the file ends early (truncated): ${length} bytes, fewer than its 12-byte header`);
  }
  for (const fraction of [0.01, 0.1, 0.5, 0.9, 0.999]) {
    const length = Math.floor(webp.length * fraction);
    invalidImage(t, webp.subarray(0, length), `Invalid WebP: the file ends early (truncated): the RIFF header declares ${webp.length} bytes, the file has ${length}`);
  }
  // Bytes after the RIFF data are ignored, as libwebp does.
  t.deepEqual(decodeImage(Buffer.concat([webp, Buffer.from('trailing junk')])), decodeImage(webp));
});

test('a WebP whose chunks do not fit is refused, naming the chunk and its byte', (t) => {
  const lying = Buffer.from(read('rgba.webp'));
  lying.writeUInt32LE(5000, 12 + 18 + 4); // the ALPH chunk (after the 18-byte VP8X chunk) claims more than the file has
  invalidImage(t, lying, 'Invalid WebP: the "ALPH" chunk at byte 30 in the file declares 5000 bytes, but only 528 follow (truncated?)');
  lying.writeUInt32LE(27, 12 + 18 + 4); // one byte too many: the next chunk header starts inside the VP8 data
  invalidImage(t, lying, /^Invalid WebP: the chunk with the unprintable tag [0-9a-f]{2} [0-9a-f]{2} [0-9a-f]{2} [0-9a-f]{2} at byte 66 in the file declares \d+ bytes/);
  const short = Buffer.from(read('photo.webp'));
  short.writeUInt32LE(12, 4); // RIFF data: "WEBP" and 8 bytes of a chunk header whose payload is cut off
  invalidImage(t, short, /^Invalid WebP: the "VP8 " chunk at byte 12 in the file declares 496 bytes, but only 0 follow/);
});

test('a WebP whose bitstream is damaged is refused by libwebp, and the error says which kind', (t) => {
  const cases: [string, string][] = [['photo.webp', 'lossy (VP8)'], ['rgba.webp', 'lossy (VP8)'], ['photo_lossless.webp', 'lossless (VP8L)']];
  for (const [name, kind] of cases) {
    const message = `Invalid WebP: libwebp could not decode the ${kind} image data (37x29): it is corrupt or incomplete`;
    for (const fraction of [0.3, 0.9]) {
      // Cut the image chunk and fix every size, so the container is well-formed and only the bitstream is short.
      const cut = editWebp(name, (tag, p) => (tag === 'VP8 ' || tag === 'VP8L' ? p.subarray(0, Math.floor(p.length * fraction)) : p));
      invalidImage(t, cut, message);
    }
    invalidImage(t, editWebp(name, (tag, p) => (tag === 'VP8 ' || tag === 'VP8L' ? p.fill(0x5a, 20) : p)), message);
  }
  // The decoder is instantiated afresh for each image: a failure leaves nothing behind.
  t.deepEqual(decodeImage(read('photo.webp')).data, expectedImage(manifest.decode['photo.webp']!).data);
});

test('a WebP with a damaged header is refused before decoding, naming what is wrong', (t) => {
  const retag = editWebp('photo_lossless.webp', (_, p) => p);
  retag.write('VP9L', 12, 'latin1');
  invalidImage(t, retag, 'Invalid WebP: expected a VP8, VP8L or VP8X chunk first but found the "VP9L" chunk');
  invalidImage(t, editWebp('photo_lossless.webp', (_, p) => p.fill(0x2e, 0, 1)), 'Invalid WebP: the VP8L bitstream at byte 12 lacks the signature byte 2f');
  invalidImage(t, editWebp('photo.webp', (_, p) => p.fill(0, 3, 6)), 'Invalid WebP: the VP8 bitstream at byte 12 lacks the key frame start code 9d 01 2a');
  invalidImage(t, editWebp('photo.webp', (_, p) => p.fill(p[0]! | 1, 0, 1)), 'Invalid WebP: the VP8 bitstream at byte 12 does not start with a key frame');
  invalidImage(t, editWebp('photo.webp', (_, p) => p.subarray(0, 6)), 'Invalid WebP: the VP8 chunk at byte 12 is too short for a frame header (6 bytes)');
  // VP8X: the canvas must be the image's size; an animation flag needs frames.
  const canvas = editWebp('rgba.webp', (tag, p) => (tag === 'VP8X' ? p.fill(37, 4, 5) : p)); // width - 1 = 37
  invalidImage(t, canvas, 'Invalid WebP: the image is 37x29 but the VP8X canvas is 38x29');
  const flagged = editWebp('rgba.webp', (tag, p) => (tag === 'VP8X' ? p.fill(p[0]! | 2, 0, 1) : p));
  invalidImage(t, flagged, 'Invalid WebP: the file is marked animated but has no frame (ANMF chunk)');
  const noImage = webpFile(webpChunks(read('rgba.webp')).filter(([tag]) => tag !== 'VP8 '));
  invalidImage(t, noImage, 'Invalid WebP: no image data (a VP8 or VP8L chunk) in the file');
  // ANMF: the first frame must fit the canvas and agree with its own bitstream.
  const offside = editWebp('animated_offset.webp', (tag, p) => (tag === 'ANMF' && p[0] === 2 ? p.fill(8, 0, 1) : p)); // x = 16
  invalidImage(t, offside, 'Invalid WebP: the first frame (10x8 at 16,6) does not fit the 24x20 canvas');
  const resized = editWebp('animated_offset.webp', (tag, p) => (tag === 'ANMF' && p[0] === 2 ? p.fill(8, 6, 7) : p)); // width - 1 = 8
  invalidImage(t, resized, "Invalid WebP: the first frame's image is 10x8 but its ANMF header says 9x8");
});

test('WebP images over the size limits are refused from the header, before decoding', (t) => {
  // A 20000x20 animation canvas around the 10x8 first frame: decoding would allocate the whole canvas.
  const wide = editWebp('animated_offset.webp', (tag, p) => (tag === 'VP8X' ? p.fill(0, 4, 7).fill(0x1f, 4, 5).fill(0x4e, 5, 6) : p));
  invalidImage(t, wide, 'WebP image of 20000x20 exceeds the limit of 16384 pixels per side and 268435456 pixels');
  const tall = editWebp('animated_offset.webp', (tag, p) => (tag === 'VP8X' ? p.fill(0xff, 7, 10) : p)); // 2^24 rows
  invalidImage(t, tall, 'WebP image of 24x16777216 exceeds the limit of 16384 pixels per side and 268435456 pixels');
});

function withPngSize(width: number, height: number): Buffer {
  const png = Buffer.from(read('photo.png'));
  png.writeUInt32BE(width, 16);
  png.writeUInt32BE(height, 20);
  return png;
}

test('images over the size limits are refused before decoding', (t) => {
  invalidImage(t, withPngSize(MAX_IMAGE_SIDE + 1, 29), 'PNG image of 16385x29 exceeds the limit of 16384 pixels per side and 268435456 pixels');
  invalidImage(t, withPngSize(2 ** 31, 2 ** 31), /^PNG image of 2147483648x2147483648 exceeds the limit/);
  invalidImage(t, withPngSize(0, 29), 'Invalid PNG: the header gives a size of 0x29');
  const jpg = Buffer.from(read('photo.jpg'));
  let at = 2;
  while (jpg[at + 1]! < 0xc0 || jpg[at + 1]! > 0xc2) at += 2 + jpg.readUInt16BE(at + 2);
  jpg.writeUInt16BE(60000, at + 5); // the SOF height
  invalidImage(t, jpg, 'JPEG image of 37x60000 exceeds the limit of 16384 pixels per side and 268435456 pixels');
});

test('decodeImage rejects what is not bytes', (t) => {
  t.throws(() => decodeImage('photo.png' as unknown as Uint8Array), {
    instanceOf: ShowO2Error,
    code: 'ERR_INVALID_ARGUMENT',
    message: 'Expected a Uint8Array or Buffer for bytes but received "photo.png" (string)',
  });
});

// ---- Resizing, cropping, letterboxing: exact against Pillow ----

// resizeBicubic transcribes Pillow's Resample.c (same coefficients, same 22-bit fixed point, same pass order), so the
// tolerance is zero levels.
for (const c of manifest.ops) {
  test(`${c.op}(${c.source}, ${c.args.join(', ')}) equals ${c.note}`, (t) => {
    const source = decodeImage(read(c.source));
    const [a, b] = c.args as [number, number];
    let out: RgbImage;
    switch (c.op) {
      case 'resize':
        out = resizeBicubic(source, a, b);
        break;
      case 'resizeShorterSide':
        out = resizeShorterSide(source, a);
        break;
      case 'understanding':
        out = centerCrop(resizeShorterSide(source, a), a, a);
        break;
      case 'centerCrop':
        out = centerCrop(source, a, b);
        break;
      case 'letterbox':
        out = letterbox(source, a);
        break;
    }
    t.is(out.width, c.width);
    t.is(out.height, c.height);
    t.deepEqual(difference(out.data, expectedImage(c).data), { max: 0, mean: 0 });
  });
}

test('a same-size resize is an unchanged copy', (t) => {
  const image = decodeImage(read('photo.png'));
  const copy = resizeBicubic(image, image.width, image.height);
  t.deepEqual(copy, image);
  t.not(copy.data, image.data);
});

test('resizing a solid colour keeps it, in both directions', (t) => {
  const image = solid(7, 5, [200, 10, 99]);
  t.deepEqual(resizeBicubic(image, 31, 2), solid(31, 2, [200, 10, 99]));
  t.deepEqual(resizeBicubic(image, 1, 1), solid(1, 1, [200, 10, 99]));
});

test('centerCrop larger than the image pads with black around it', (t) => {
  const out = centerCrop(solid(1, 1, [9, 8, 7]), 3, 2);
  t.deepEqual(Array.from(out.data), [0, 0, 0, 9, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
});

test('letterbox of a square image is a plain resize', (t) => {
  const image = solid(4, 4, [1, 2, 3]);
  t.deepEqual(letterbox(image, 8), solid(8, 8, [1, 2, 3]));
});

// ---- Tensors ----

test('imageToTensor is bit-identical to ToTensor then Normalize(0.5, 0.5) in float32, and planar', (t) => {
  const fixture = read('normalize.f32');
  const expected = new Float32Array(fixture.buffer.slice(fixture.byteOffset, fixture.byteOffset + fixture.byteLength));
  const levels: RgbImage = { width: 256, height: 1, data: Uint8Array.from({ length: 768 }, (_, i) => Math.floor(i / 3)) };
  const x = imageToTensor(levels);
  t.is(x.length, 768);
  t.deepEqual(x.subarray(0, 256), expected); // R plane
  t.deepEqual(x.subarray(256, 512), expected); // G plane
  t.deepEqual(x.subarray(512), expected); // B plane
  t.is(x[0], -1);
  t.is(x[255], 1);

  const pixel = imageToTensor({ width: 2, height: 1, data: new Uint8Array([255, 0, 0, 0, 0, 255]) });
  t.deepEqual(Array.from(pixel), [1, -1, -1, -1, -1, 1]);
});

test('tensorToImage rounds to the nearest level by default and truncates on request', (t) => {
  // (x + 1) / 2 * 255 = 127.5 + 127.5 * x. Values chosen a little either side of the halfway points.
  const x = Float32Array.from([-1, 1, 0, -0.999, 0.5, 2, -3, Number.NaN, 0.004]);
  const round = tensorToImage(Float32Array.from([...x, ...x, ...x]), 9, 1);
  const truncated = tensorToImage(Float32Array.from([...x, ...x, ...x]), 9, 1, { rounding: 'truncate' });
  const red = (image: RgbImage) => Array.from(image.data.filter((_, i) => i % 3 === 0));
  t.deepEqual(red(round), [0, 255, 128, 0, 191, 255, 0, 0, 128]);
  t.deepEqual(red(truncated), [0, 255, 127, 0, 191, 255, 0, 0, 128]);
});

test('tensorToImage interleaves the planes and inverts imageToTensor exactly', (t) => {
  const image = decodeImage(read('photo.png'));
  t.deepEqual(tensorToImage(imageToTensor(image), image.width, image.height), image);
  const planar = tensorToImage(Float32Array.from([1, -1, -1, 1, -1, -1]), 2, 1);
  t.deepEqual(Array.from(planar.data), [255, 0, 0, 0, 255, 0]);
});

test('truncating loses levels even on an exact round trip, which is why rounding is the default', (t) => {
  // 127.5 * (x + 1) in float32 lands a hair below the integer for 63 of the 256 levels; astype(uint8) drops them.
  const levels: RgbImage = { width: 256, height: 1, data: Uint8Array.from({ length: 768 }, (_, i) => Math.floor(i / 3)) };
  const back = tensorToImage(imageToTensor(levels), 256, 1, { rounding: 'truncate' });
  const lost = Array.from({ length: 256 }, (_, v) => v).filter((v) => back.data[v * 3] !== v);
  t.is(lost.length, 63);
  t.true(lost.every((v) => back.data[v * 3] === v - 1));
});

test('truncation is what the reference does: it loses half a level on average', (t) => {
  const image = decodeImage(read('photo.png'));
  const x = imageToTensor(image);
  const noisy = x.map((v, i) => v + ((i * 37) % 100) / 100 / 127.5); // up to one level above each pixel
  const mean = (img: RgbImage) => img.data.reduce((s, v) => s + v, 0) / img.data.length;
  const rounded = mean(tensorToImage(noisy, image.width, image.height));
  const truncated = mean(tensorToImage(noisy, image.width, image.height, { rounding: 'truncate' }));
  t.true(rounded - truncated > 0.4 && rounded - truncated < 0.6, `${rounded - truncated}`);
});

// ---- Argument validation ----

const good = solid(2, 2, [0, 0, 0]);
const badArguments: [string, () => unknown, string][] = [
  ['image null', () => resizeBicubic(null as unknown as RgbImage, 1, 1), 'Expected an RgbImage ({ width, height, data }) for image but received null'],
  ['image width', () => centerCrop({ ...good, width: 0 }, 1, 1), 'Expected a positive integer for image.width but received 0 (number)'],
  ['image height', () => imageToTensor({ ...good, height: 1.5 }), 'Expected a positive integer for image.height but received 1.5 (number)'],
  ['image data type', () => encodePng({ ...good, data: [0] as unknown as Uint8Array }), 'Expected a Uint8Array for image.data but received an array of length 1'],
  ['image data length', () => letterbox({ ...good, data: new Uint8Array(11) }, 4), 'Expected 12 bytes (width * height * 3) for image.data but received "11 bytes" (string)'],
  ['jpeg image', () => encodeJpeg({ ...good, data: new Uint8Array(11) }), 'Expected 12 bytes (width * height * 3) for image.data but received "11 bytes" (string)'],
  ['jpeg options', () => encodeJpeg(good, 90 as never), 'Expected an object for options but received 90 (number)'],
  ['jpeg quality 0', () => encodeJpeg(good, { quality: 0 }), 'Expected an integer from 1 to 100 for options.quality but received 0 (number)'],
  ['jpeg quality 101', () => encodeJpeg(good, { quality: 101 }), 'Expected an integer from 1 to 100 for options.quality but received 101 (number)'],
  ['jpeg quality fraction', () => encodeJpeg(good, { quality: 85.5 }), 'Expected an integer from 1 to 100 for options.quality but received 85.5 (number)'],
  ['jpeg quality NaN', () => encodeJpeg(good, { quality: Number.NaN }), 'Expected an integer from 1 to 100 for options.quality but received NaN (number)'],
  ['resize width', () => resizeBicubic(good, 0, 1), 'Expected an integer between 1 and 16384 for width but received 0 (number)'],
  ['resize height', () => resizeBicubic(good, 1, 16385), 'Expected an integer between 1 and 16384 for height but received 16385 (number)'],
  ['crop width', () => centerCrop(good, Number.NaN, 1), 'Expected an integer between 1 and 16384 for width but received NaN (number)'],
  ['crop height', () => centerCrop(good, 1, '2' as unknown as number), 'Expected an integer between 1 and 16384 for height but received "2" (string)'],
  ['shorter size', () => resizeShorterSide(good, -4), 'Expected an integer between 1 and 16384 for size but received -4 (number)'],
  ['shorter size too long', () => resizeShorterSide(solid(1, 10, [0, 0, 0]), 2000), 'Expected a size that keeps the longer side within 16384 pixels for size but received 2000 (number)'],
  ['letterbox size', () => letterbox(good, 2.5), 'Expected an integer between 1 and 16384 for size but received 2.5 (number)'],
  ['tensor type', () => tensorToImage(new Float64Array(3) as unknown as Float32Array, 1, 1), 'Expected a Float32Array for data but received an object (Float64Array)'],
  ['tensor length', () => tensorToImage(new Float32Array(4), 1, 1), 'Expected 3 floats (3 * height * width) for data but received "4 floats" (string)'],
  ['tensor width', () => tensorToImage(new Float32Array(3), 0, 1), 'Expected an integer between 1 and 16384 for width but received 0 (number)'],
  ['tensor options', () => tensorToImage(new Float32Array(3), 1, 1, 'round' as never), 'Expected an object for options but received "round" (string)'],
  ['tensor rounding', () => tensorToImage(new Float32Array(3), 1, 1, { rounding: 'floor' as never }), 'Expected one of \'round\', \'truncate\' for options.rounding but received "floor" (string)'],
  ['tensor height', () => tensorToImage(new Float32Array(3), 1, 16385), 'Expected an integer between 1 and 16384 for height but received 16385 (number)'],
  ['png image missing', () => encodePng(undefined as unknown as RgbImage), 'Expected an RgbImage ({ width, height, data }) for image but received undefined'],
  ['decode an ArrayBuffer', () => decodeImage(new ArrayBuffer(8) as unknown as Uint8Array), 'Expected a Uint8Array or Buffer for bytes but received an object (ArrayBuffer)'],
  ['readImageSize null', () => readImageSize(null as unknown as Uint8Array), 'Expected a Uint8Array or Buffer for bytes but received null'],
];
for (const [label, call, message] of badArguments) {
  test(`bad argument: ${label}`, (t) => {
    t.throws(call, { instanceOf: ShowO2Error, code: 'ERR_INVALID_ARGUMENT', message });
  });
}

test('tensorToImage clamps +Infinity to 255 and -Infinity to 0, as it clamps any value outside [-1, 1]', (t) => {
  const image = tensorToImage(Float32Array.from([Infinity, -Infinity, Number.NaN]), 1, 1);
  t.deepEqual(Array.from(image.data), [255, 0, 0]);
  const truncated = tensorToImage(Float32Array.from([Infinity, -Infinity, 1e30]), 1, 1, { rounding: 'truncate' });
  t.deepEqual(Array.from(truncated.data), [255, 0, 255]);
});

test('writeImage refuses a path that is not a string, naming it, before writing', async (t) => {
  const image = solid(1, 1, [0, 0, 0]);
  await t.throwsAsync(writeImage(42 as unknown as string, image), {
    instanceOf: ShowO2Error,
    code: 'ERR_INVALID_ARGUMENT',
    message: 'Expected a file path for path but received 42 (number)',
  });
  await t.throwsAsync(writeImage(path.join(tempDir(), 'x.png'), null as unknown as RgbImage), {
    code: 'ERR_INVALID_ARGUMENT',
    message: 'Expected an RgbImage ({ width, height, data }) for image but received null',
  });
});

test('readImageSize of a header cut short, or of a header giving an empty size, is ERR_INVALID_IMAGE naming the format', (t) => {
  const sizeError = (bytes: Uint8Array, message: string) =>
    t.throws(() => readImageSize(bytes), { instanceOf: ShowO2Error, code: 'ERR_INVALID_IMAGE', message });
  sizeError(read('photo.png').subarray(0, 20), 'Invalid PNG: the IHDR chunk is missing or truncated');
  sizeError(read('photo.jpg').subarray(0, 3), 'Invalid JPEG: no frame header (SOF marker) before the image data');
  sizeError(read('photo.webp').subarray(0, 10), 'Invalid WebP: the file ends early (truncated): 10 bytes, fewer than its 12-byte header');
  sizeError(new Uint8Array(0), 'Cannot decode an image from 0 bytes');
  sizeError(withPngSize(37, 0), 'Invalid PNG: the header gives a size of 37x0');
});

test('a misspelt option is ERR_INVALID_ARGUMENT naming it, not a silent default', async (t) => {
  const image = { width: 2, height: 1, data: new Uint8Array(6) };
  const misspelt = (fn: () => unknown, key: string) => {
    const err = t.throws(fn, { instanceOf: ShowO2Error });
    t.is(err?.code, 'ERR_INVALID_ARGUMENT');
    t.regex(err?.message ?? '', new RegExp(`a key of options.*"${key}"`));
  };
  misspelt(() => encodeJpeg(image, { qualty: 50 } as never), 'qualty');
  misspelt(() => tensorToImage(new Float32Array(6), 2, 1, { round: 'truncate' } as never), 'round');
  const dir = tempDir();
  const err = await t.throwsAsync(writeImage(path.join(dir, 'x.jpg'), image, { qualty: 50 } as never), { instanceOf: ShowO2Error });
  t.is(err?.code, 'ERR_INVALID_ARGUMENT');
  t.regex(err?.message ?? '', /"qualty"/);
  t.false(fs.existsSync(path.join(dir, 'x.jpg')));
});
