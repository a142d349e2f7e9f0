// Device selection (ShowO2Model.load / WanVae.load `device`, `weightDtype`, `convDtype`, `channelsLast`): runs on
// every machine. Without a usable
// GPU (CI), 'cuda' must reject with a NoGpuError (ERR_NO_GPU) carrying the reason runtimeInfo() gives, before anything
// is read, and 'auto' must fall back to the CPU; with one (the GPU cycle), 'cuda' and 'auto' must land on it. Bad
// values are ERR_INVALID_ARGUMENT naming the field before anything loads.
import * as fs from 'node:fs';
import * as path from 'node:path';

import test from 'ava';

import { NoGpuError, runtimeInfo, ShowO2Error, ShowO2Model, WanVae, type WanVaeConfig } from 'showo2';
import { repoRoot, tempDir } from '../helpers.js';
import { writeTinyModel } from '../scenarios/tiny-model.js';

const fixtureDir = path.join(repoRoot, 'test', 'fixtures', 'showo2');
const vaeDir = path.join(repoRoot, 'test', 'fixtures', 'vae');
const vaePath = path.join(vaeDir, 'tiny_vae.pth');
const vaeConfig = JSON.parse(fs.readFileSync(path.join(vaeDir, 'tiny_vae_config.json'), 'utf8')) as WanVaeConfig;

function makeModelDir(): string {
  return writeTinyModel(tempDir('showo2-device-'));
}
const modelDir = makeModelDir();

const isShowO2Error = (code: string, message?: RegExp) => (err: unknown) =>
  err instanceof ShowO2Error && err.code === code && (message === undefined || message.test(err.message));

test("device 'cpu' loads on the CPU", async (t) => {
  const model = await ShowO2Model.load(modelDir, { vaePath, device: 'cpu' });
  try {
    t.is(model.device, 'cpu');
  } finally {
    model.dispose();
  }
  const vae = await WanVae.load(vaePath, { config: vaeConfig, device: 'cpu' });
  t.is(vae.device, 'cpu');
  vae.dispose();
});

test("device 'cuda' runs on the GPU, or is ERR_NO_GPU with runtimeInfo's reason", async (t) => {
  const info = await runtimeInfo();
  const reason = info.cuda.unavailableReason;
  if (reason === null) {
    const model = await ShowO2Model.load(modelDir, { vaePath, device: 'cuda' });
    t.is(model.device, 'cuda');
    model.dispose();
    const vae = await WanVae.load(vaePath, { config: vaeConfig, device: 'cuda', weightDtype: 'fp16' });
    t.is(vae.device, 'cuda');
    vae.dispose();
    return;
  }
  t.log(`no usable GPU: ${reason}`);
  const missing = path.join(tempDir('showo2-device-'), 'no-such-model');
  for (const load of [
    () => ShowO2Model.load(modelDir, { vaePath, device: 'cuda' }),
    () => WanVae.load(vaePath, { config: vaeConfig, device: 'cuda' }),
    // Checked before anything is read (or, for a repo id, downloaded): not ERR_MODEL_NOT_FOUND.
    () => ShowO2Model.load(missing, { device: 'cuda' }),
  ]) {
    const err = await t.throwsAsync(load());
    t.true(err instanceof NoGpuError && err instanceof ShowO2Error, `expected a NoGpuError, got ${String(err)}`);
    t.is(err!.name, 'NoGpuError');
    t.is((err as NoGpuError).code, 'ERR_NO_GPU');
    // The reason is the one runtimeInfo() gives (no driver, no device, no CUDA in this build, ...).
    t.true(err!.message.startsWith(`device 'cuda' is unavailable: ${reason}. Use device 'cpu'`), err!.message);
  }
});

test.serial("SHOWO2_DEVICE=cuda without a usable GPU is ERR_NO_GPU saying where 'cuda' came from", async (t) => {
  const info = await runtimeInfo();
  if (info.cuda.unavailableReason === null) {
    t.log('a usable GPU is present: the no-GPU message cannot be produced here');
    t.pass();
    return;
  }
  const saved = process.env.SHOWO2_DEVICE;
  process.env.SHOWO2_DEVICE = 'cuda';
  try {
    await t.throwsAsync(WanVae.load(vaePath, { config: vaeConfig }), {
      instanceOf: NoGpuError,
      code: 'ERR_NO_GPU',
      message: /^device 'cuda' \(from the SHOWO2_DEVICE environment variable\) is unavailable: /,
    });
  } finally {
    if (saved === undefined) delete process.env.SHOWO2_DEVICE;
    else process.env.SHOWO2_DEVICE = saved;
  }
});

test("device 'auto' picks CUDA exactly when runtimeInfo says it is usable", async (t) => {
  const info = await runtimeInfo();
  const expected = info.cuda.unavailableReason === null ? 'cuda' : 'cpu';
  const vae = await WanVae.load(vaePath, { config: vaeConfig, device: 'auto' });
  t.is(vae.device, expected);
  vae.dispose();
});

test('bad device or weightDtype values are ERR_INVALID_ARGUMENT naming the field', async (t) => {
  const deviceErr = await t.throwsAsync(ShowO2Model.load(modelDir, { vaePath, device: 'gpu' as never }));
  t.true(isShowO2Error('ERR_INVALID_ARGUMENT', /Expected one of 'cpu', 'cuda', 'auto' for options\.device .*gpu/)(deviceErr));
  const err = await t.throwsAsync(ShowO2Model.load(modelDir, { vaePath, weightDtype: 'fp8' as never }));
  t.true(isShowO2Error('ERR_INVALID_ARGUMENT', /options\.weightDtype/)(err));
  const vaeErr = await t.throwsAsync(WanVae.load(vaePath, { device: 1 as never }));
  t.true(isShowO2Error('ERR_INVALID_ARGUMENT', /options\.device/)(vaeErr));
});

test('bad convDtype or channelsLast values are ERR_INVALID_ARGUMENT naming the field', async (t) => {
  const modelErr = await t.throwsAsync(ShowO2Model.load(modelDir, { vaePath, convDtype: 'fp16' as never }));
  t.true(isShowO2Error('ERR_INVALID_ARGUMENT', /Expected one of 'fp32', 'bf16' for options\.convDtype/)(modelErr));
  const layoutErr = await t.throwsAsync(ShowO2Model.load(modelDir, { vaePath, channelsLast: 'yes' as never }));
  t.true(isShowO2Error('ERR_INVALID_ARGUMENT', /options\.channelsLast/)(layoutErr));
  const vaeErr = await t.throwsAsync(WanVae.load(vaePath, { config: vaeConfig, convDtype: 1 as never }));
  t.true(isShowO2Error('ERR_INVALID_ARGUMENT', /options\.convDtype/)(vaeErr));
  const vaeLayoutErr = await t.throwsAsync(WanVae.load(vaePath, { config: vaeConfig, channelsLast: 0 as never }));
  t.true(isShowO2Error('ERR_INVALID_ARGUMENT', /options\.channelsLast/)(vaeLayoutErr));
  const actErr = await t.throwsAsync(ShowO2Model.load(modelDir, { vaePath, activationDtype: 'fp16' as never }));
  t.true(isShowO2Error('ERR_INVALID_ARGUMENT', /Expected one of 'fp32', 'bf16' for options\.activationDtype/)(actErr));
});

// On the CPU the kernel choices are accepted and change nothing (the same bits); on a GPU (the GPU cycle) bf16
// convolutions on channels-last activations decode the tiny VAE's latent close to the fp32 contiguous path.
test('convDtype, channelsLast and activationDtype: ignored on the CPU, the same function on a GPU', async (t) => {
  const info = await runtimeInfo();
  const latent = { data: new Float32Array(16 * 2 * 4 * 4).map((_, i) => Math.sin(i * 0.37)), shape: [1, 16, 2, 4, 4] };
  const device = info.cuda.unavailableReason === null ? 'cuda' : 'cpu';
  const plain = await WanVae.load(vaePath, { config: vaeConfig, device });
  const fast = await WanVae.load(vaePath, {
    config: vaeConfig,
    device,
    convDtype: 'bf16',
    channelsLast: true,
    activationDtype: 'bf16',
  });
  try {
    const a = (await plain.decode(latent)).raw.data;
    const b = (await fast.decode(latent)).raw.data;
    t.is(a.length, b.length);
    if (device === 'cpu') {
      t.deepEqual(a, b);
      return;
    }
    let num = 0;
    let den = 0;
    for (let i = 0; i < a.length; i++) {
      num += (a[i]! - b[i]!) ** 2;
      den += a[i]! ** 2;
    }
    t.log(`bf16 channels-last (bf16 activations) vs fp32 contiguous decode on the GPU: relative L2 ${Math.sqrt(num / den).toExponential(2)}`);
    t.true(Math.sqrt(num / den) < 5e-2);
  } finally {
    plain.dispose();
    fast.dispose();
  }
});

test.serial('SHOWO2_DEVICE with a value that is not a device is ignored: the default is the CPU', async (t) => {
  const saved = process.env.SHOWO2_DEVICE;
  process.env.SHOWO2_DEVICE = 'gpu';
  try {
    const vae = await WanVae.load(vaePath, { config: vaeConfig });
    t.is(vae.device, 'cpu');
    vae.dispose();
  } finally {
    if (saved === undefined) delete process.env.SHOWO2_DEVICE;
    else process.env.SHOWO2_DEVICE = saved;
  }
});
