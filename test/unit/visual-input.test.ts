// The understanding inputs (lib/visual-input.ts): reading an ImageInput of every kind, validating a VideoInput,
// sampling and letterboxing video frames, and errors that name the option and the frame. The pixels themselves are
// checked against torchvision in image.test.ts; the model's use of them in model.test.ts; fuzzed in test/fuzz/js.
import * as fs from 'node:fs';
import * as path from 'node:path';

import test from 'ava';

import { centerCrop, decodeImage, encodePng, imageToTensor, letterbox, resizeShorterSide, ShowO2Error, type RgbImage } from 'showo2';
import { imageThreadCount, RETIRE_AFTER_PIXELS } from '../../dist/image-worker.js';
import { checkVideoInput, readImageInput, understandingImagePixels, videoPixels } from '../../dist/visual-input.js';

import { repoRoot, tempDir } from '../helpers.js';

const photoPath = path.join(repoRoot, 'test', 'fixtures', 'images', 'photo.png');
const photo = decodeImage(fs.readFileSync(photoPath));

function solid(width: number, height: number, value: number): RgbImage {
  return { width, height, data: new Uint8Array(width * height * 3).fill(value) };
}

test('an image input may be a path, bytes or pixels, and gives the same pixels each way', async (t) => {
  const fromPath = await readImageInput(photoPath, 'options.image');
  const fromBytes = await readImageInput(fs.readFileSync(photoPath), 'options.image');
  const fromPixels = await readImageInput({ ...photo }, 'options.image');
  for (const image of [fromPath, fromBytes, fromPixels]) t.deepEqual(image, photo);
});

test('a bad image input is a typed error naming the option, the frame and the file', async (t) => {
  const expectError = async (input: unknown, name: string, code: string, pattern: RegExp): Promise<void> => {
    const err = await t.throwsAsync(readImageInput(input, name), { instanceOf: ShowO2Error });
    t.is(err!.code as string, code);
    t.regex(err!.message, pattern);
  };
  const frame = 'options.video.frames[3]';
  await expectError({ width: 2, height: 2, data: new Float32Array(12) }, frame, 'ERR_INVALID_ARGUMENT', /options\.video\.frames\[3\]\.data/);
  await expectError({ width: 2.5, height: 2, data: new Uint8Array(15) }, frame, 'ERR_INVALID_ARGUMENT', /options\.video\.frames\[3\]\.width/);
  await expectError({ width: 2, height: 2, data: new Uint8Array(11) }, frame, 'ERR_INVALID_ARGUMENT', /12 bytes.*options\.video\.frames\[3\]\.data/);
  await expectError(Uint8Array.from([1, 2, 3]), frame, 'ERR_INVALID_IMAGE', /^options\.video\.frames\[3\]: Unsupported image format/);
  await expectError('/no/such/frame.png', frame, 'ERR_FILE_NOT_FOUND', /\/no\/such\/frame\.png \(options\.video\.frames\[3\]\)/);
  const notAnImage = path.join(tempDir(), 'notes.png');
  fs.writeFileSync(notAnImage, 'hello');
  await expectError(notAnImage, 'options.image', 'ERR_INVALID_IMAGE', new RegExp(`^options\\.image \\(${notAnImage.replace(/[.\\/]/g, '\\$&')}\\): Unsupported`));
  await expectError(42, 'options.image', 'ERR_INVALID_ARGUMENT', /options\.image/);
  await expectError(null, 'options.image', 'ERR_INVALID_ARGUMENT', /options\.image/);
});

test('checkVideoInput: frames must be a non-empty array; numFrames 1 to 1024, 32 when absent', (t) => {
  t.deepEqual(checkVideoInput({ frames: ['a.png'] }), { frames: ['a.png'], numFrames: 32 });
  t.is(checkVideoInput({ frames: ['a.png'], numFrames: 1024 }).numFrames, 1024);
  for (const [value, pattern] of [
    [null, /options\.video/],
    [{ frames: [] }, /options\.video\.frames/],
    [{ frames: 'a.png' }, /options\.video\.frames/],
    [{ frames: ['a.png'], numFrames: 0 }, /options\.video\.numFrames/],
    [{ frames: ['a.png'], numFrames: 1025 }, /options\.video\.numFrames/],
    [{ frames: ['a.png'], numFrames: 2.5 }, /options\.video\.numFrames/],
  ] as const) {
    const err = t.throws(() => checkVideoInput(value), { instanceOf: ShowO2Error });
    t.is(err!.code, 'ERR_INVALID_ARGUMENT');
    t.regex(err!.message, pattern);
  }
});

test('understanding image pixels: shorter side resized, centre-cropped, normalized', async (t) => {
  const pixels = await understandingImagePixels(photoPath, 24, 'options.image');
  t.deepEqual(pixels, imageToTensor(centerCrop(resizeShorterSide(photo, 24), 24, 24)));
});

test('video pixels: numFrames sampled uniformly (numpy linspace, truncated), each letterboxed, in order', async (t) => {
  // Five frames of distinct solid grays, sampled to 4: linspace(0, 4, 4) = 0, 1.33, 2.67, 4 -> frames 0, 1, 2, 4.
  const frames = [10, 60, 110, 160, 210].map((v) => solid(6, 4, v));
  const { data, frames: count } = await videoPixels({ frames, numFrames: 4 }, 8);
  t.is(count, 4);
  const size = 3 * 8 * 8;
  t.is(data.length, 4 * size);
  [0, 1, 2, 4].forEach((source, i) => {
    t.deepEqual(data.subarray(i * size, (i + 1) * size), imageToTensor(letterbox(frames[source]!, 8)), `frame ${i} is source ${source}`);
  });
  // More samples than frames repeat frames; a single frame fills every sample.
  const repeated = await videoPixels({ frames: [encodePng(solid(3, 3, 200))], numFrames: 3 }, 4);
  t.is(repeated.frames, 3);
  const one = imageToTensor(letterbox(solid(3, 3, 200), 4));
  for (let i = 0; i < 3; i++) t.deepEqual(repeated.data.subarray(i * one.length, (i + 1) * one.length), one);
});

test('a bad frame is named by its index in the video, even when it is sampled late', async (t) => {
  const frames = [solid(4, 4, 0), solid(4, 4, 1), { width: 4, height: 4, data: new Uint8Array(5) }];
  const err = await t.throwsAsync(videoPixels(checkVideoInput({ frames, numFrames: 3 }), 8), { instanceOf: ShowO2Error });
  t.is(err!.code, 'ERR_INVALID_ARGUMENT');
  t.regex(err!.message, /options\.video\.frames\[2\]\.data/);
});

// Serial, so it runs before the other tests and no other request shares the preprocessing thread.
test.serial('after a large image the preprocessing thread is replaced (its memory released); later images still work', async (t) => {
  const side = Math.ceil(Math.sqrt(RETIRE_AFTER_PIXELS)) + 1;
  const big = encodePng(solid(side, side, 90));
  const small = encodePng(solid(8, 8, 10));
  t.is((await understandingImagePixels(small, 4, 'options.image')).length, 48);
  t.is(imageThreadCount(), 1);
  t.is((await understandingImagePixels(big, 16, 'options.image')).length, 3 * 16 * 16);
  // The retired thread ends by itself once its work is done.
  for (let i = 0; i < 500 && imageThreadCount() > 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  t.is(imageThreadCount(), 0);
  t.deepEqual(await understandingImagePixels(small, 4, 'options.image'), imageToTensor(centerCrop(resizeShorterSide(solid(8, 8, 10), 4), 4, 4)));
  t.is(imageThreadCount(), 1);
  // A small image keeps the thread.
  await understandingImagePixels(small, 4, 'options.image');
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.is(imageThreadCount(), 1);
});
