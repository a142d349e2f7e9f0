// Native work and image preprocessing run off the JS thread: timers keep firing while a large conversion or a large
// image decode is in progress. Serial: each test blocks the thread while it builds its input.
import * as path from 'node:path';

import test from 'ava';

import { convertToSafetensors, encodeJpeg, WeightFile } from 'showo2';
import { understandingImagePixels } from '../../dist/visual-input.js';
import { tempDir, watchEventLoop, writeSafetensors } from '../helpers.js';

test.serial('setInterval keeps ticking during convertToSafetensors of a 96 MiB file', async (t) => {
  const dir = tempDir();
  const src = path.join(dir, 'big.safetensors');
  const dst = path.join(dir, 'big-bf16.safetensors');
  const n = 24 * 1024 * 1024;
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) values[i] = (i % 1000) * 0.5;
  writeSafetensors(src, [{ name: 'big', dtype: 'F32', shape: [n / 1024, 1024], data: values }]);

  let ticks = 0;
  const timer = setInterval(() => ticks++, 2);
  const started = performance.now();
  const written = await convertToSafetensors(src, dst, { dtype: 'BF16' });
  const elapsed = performance.now() - started;
  clearInterval(timer);

  t.is(written, 1);
  // A conversion this size takes well over 20 ms; if it ran on the JS thread no tick could fire until it returned.
  t.true(elapsed > 20, `the conversion took only ${elapsed.toFixed(1)} ms: make the file larger`);
  t.true(ticks >= 3, `only ${ticks} timer ticks during ${elapsed.toFixed(0)} ms of conversion`);

  await using out = await WeightFile.open(dst);
  t.deepEqual(out.tensors.map((x) => [x.dtype, [...x.shape]]), [['BF16', [n / 1024, 1024]]]);
});

test.serial('image inputs are decoded and resized off the JS thread: timers tick while a 6-megapixel JPEG is prepared', async (t) => {
  // A smooth gradient compresses well but still takes jpeg-js a second or more to decode.
  const width = 3000;
  const height = 2000;
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data.set([x & 255, y & 255, (x + y) & 255], (y * width + x) * 3);
  }
  const jpeg = encodeJpeg({ width, height, data }, { quality: 80 });

  const loop = watchEventLoop(2);
  const started = performance.now();
  const pixels = await understandingImagePixels(jpeg, 64, 'options.image');
  const elapsed = performance.now() - started;
  const { ticks, longestGap } = loop.stop();

  t.is(pixels.length, 3 * 64 * 64);
  t.true(elapsed > 100, `preparing the image took only ${elapsed.toFixed(1)} ms: make it larger`);
  // On the JS thread there would be one gap as long as the whole decode; off it, the timer keeps its pace.
  t.true(ticks >= 10, `only ${ticks} timer ticks during ${elapsed.toFixed(0)} ms`);
  t.true(longestGap < elapsed / 2, `a ${longestGap.toFixed(0)} ms gap between ticks during ${elapsed.toFixed(0)} ms`);
});
