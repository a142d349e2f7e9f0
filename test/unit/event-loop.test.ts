// Native work runs off the JS thread: timers keep firing while a large conversion is in progress.
import * as path from 'node:path';

import test from 'ava';

import { convertToSafetensors, WeightFile } from 'showo2';
import { tempDir, writeSafetensors } from '../helpers.js';

test('setInterval keeps ticking during convertToSafetensors of a 96 MiB file', async (t) => {
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
