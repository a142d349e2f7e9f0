// Image decoding, encoding, resampling and tensor conversion (lib/image.ts), checked against the Pillow fixtures in
// test/fixtures/images/ (tools/fixtures/make_image_fixtures.py writes them; manifest.json says how each was made).
import * as fs from 'node:fs';
import * as path from 'node:path';

import test from 'ava';

import {
  centerCrop,
  decodeImage,
  encodePng,
  imageToTensor,
  letterbox,
  MAX_IMAGE_SIDE,
  resizeBicubic,
  resizeShorterSide,
  ShowO2Error,
  tensorToImage,
  type RgbImage,
} from 'showo2';

import { repoRoot } from '../helpers.js';

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

// ---- Bad input: always ERR_INVALID_IMAGE, promptly ----

function invalidImage(t: import('ava').ExecutionContext, bytes: Uint8Array, message: string | RegExp): void {
  const err = t.throws(() => decodeImage(bytes), { instanceOf: ShowO2Error });
  t.is(err?.code, 'ERR_INVALID_IMAGE');
  if (typeof message === 'string') t.is(err?.message, message);
  else t.regex(err?.message ?? '', message);
}

test('non-image bytes name what the file starts with', (t) => {
  invalidImage(t, Buffer.from('hello world'), 'Unsupported image format: expected PNG or JPEG, but the file starts with bytes 68 65 6c 6c 6f 20 77 6f');
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
];
for (const [label, call, message] of badArguments) {
  test(`bad argument: ${label}`, (t) => {
    t.throws(call, { instanceOf: ShowO2Error, code: 'ERR_INVALID_ARGUMENT', message });
  });
}
