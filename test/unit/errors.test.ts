// The error classes: ShowO2Error and one family class per kind of failure, the fixed code -> class mapping, how
// native errors become family errors, real throw sites of each family, the invalidParameterError wording, the
// troubleshooting page (one section per code), and a guard against bare `new ShowO2Error(` in lib/.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';

import test from 'ava';

import {
  CancelledError,
  CudaError,
  decodeImage,
  DisposedError,
  DownloadError,
  FileAccessError,
  InternalError,
  InvalidInputError,
  InvalidModelFileError,
  invalidParameterError,
  ModelNotFoundError,
  NativeLoadError,
  NoGpuError,
  OutOfMemoryError,
  resolveModel,
  runtimeInfo,
  ShowO2Error,
  ShowO2Model,
  UnsupportedModelError,
  WanVae,
  WeightFile,
  type ErrorCode,
} from 'showo2';
import {
  callNative,
  createError,
  describeValue,
  disposedError,
  ERROR_CLASSES,
  ERROR_CODES,
  fromNativeError,
} from '../../dist/errors.js';
import { loadAddonFrom } from '../../dist/native.js';
import { repoRoot, tempDir, writeSafetensors } from '../helpers.js';

/**
 * The documented mapping (README "Errors", docs/TROUBLESHOOTING.md), written out here so that a change to
 * ERROR_CLASSES has to change this table too.
 */
const FAMILY: Record<ErrorCode, string> = {
  ERR_INVALID_ARGUMENT: 'InvalidInputError',
  ERR_SHAPE_MISMATCH: 'InvalidInputError',
  ERR_INVALID_IMAGE: 'InvalidInputError',
  ERR_FILE_NOT_FOUND: 'FileAccessError',
  ERR_FILE_READ: 'FileAccessError',
  ERR_MODEL_NOT_FOUND: 'ModelNotFoundError',
  ERR_CORRUPT_FILE: 'InvalidModelFileError',
  ERR_UNSAFE_PICKLE: 'InvalidModelFileError',
  ERR_TENSOR_NOT_FOUND: 'InvalidModelFileError',
  ERR_UNSUPPORTED_MODEL: 'UnsupportedModelError',
  ERR_UNSUPPORTED_FORMAT: 'UnsupportedModelError',
  ERR_UNSUPPORTED_DTYPE: 'UnsupportedModelError',
  ERR_OUT_OF_MEMORY: 'OutOfMemoryError',
  ERR_CANCELLED: 'CancelledError',
  ERR_DISPOSED: 'DisposedError',
  ERR_NO_GPU: 'NoGpuError',
  ERR_CUDA: 'CudaError',
  ERR_DOWNLOAD: 'DownloadError',
  ERR_UNAUTHORIZED: 'DownloadError',
  ERR_OFFLINE: 'DownloadError',
  ERR_NATIVE_LOAD: 'NativeLoadError',
  ERR_INTERNAL: 'InternalError',
};

/** Every family class, as the package exports it. */
const exportedFamilies = {
  CancelledError,
  CudaError,
  DisposedError,
  DownloadError,
  FileAccessError,
  InternalError,
  InvalidInputError,
  InvalidModelFileError,
  ModelNotFoundError,
  NativeLoadError,
  NoGpuError,
  OutOfMemoryError,
  UnsupportedModelError,
};

// ---- The classes and the mapping ----

test('ShowO2Error carries its code, name and cause', (t) => {
  const cause = new Error('inner');
  const err = new ShowO2Error('ERR_CORRUPT_FILE', 'bad header', { cause });
  t.true(err instanceof Error);
  t.is(err.code, 'ERR_CORRUPT_FILE');
  t.is(err.name, 'ShowO2Error');
  t.is(err.message, 'bad header');
  t.is(err.cause, cause);
});

test('every code maps to the documented family, and ERROR_CODES lists each code once', (t) => {
  t.deepEqual([...ERROR_CODES].sort(), Object.keys(FAMILY).sort());
  t.is(new Set(ERROR_CODES).size, ERROR_CODES.length);
  for (const code of ERROR_CODES) t.is(ERROR_CLASSES[code].name, FAMILY[code], code);
  // Every exported family is used by some code, and every class in the mapping is the exported one.
  t.deepEqual([...new Set(Object.values(ERROR_CLASSES))].map((c) => c.name).sort(), Object.keys(exportedFamilies).sort());
  for (const code of ERROR_CODES) {
    t.is(ERROR_CLASSES[code], exportedFamilies[FAMILY[code] as keyof typeof exportedFamilies], code);
  }
});

for (const code of Object.keys(FAMILY) as ErrorCode[]) {
  test(`createError('${code}') is a ${FAMILY[code]}, a ShowO2Error and an Error, named after its class`, (t) => {
    const cause = new Error('inner');
    const err = createError(code, 'what went wrong', { cause });
    const family = exportedFamilies[FAMILY[code] as keyof typeof exportedFamilies];
    t.true(err instanceof family);
    t.true(err instanceof ShowO2Error);
    t.true(err instanceof Error);
    t.is(err.constructor, family);
    t.is(err.name, FAMILY[code]);
    t.is(err.code, code);
    t.is(err.message, 'what went wrong');
    t.is(err.cause, cause);
    // A stack trace says which family failed.
    t.true(err.stack!.startsWith(`${FAMILY[code]}: what went wrong\n`), err.stack);
    // ...and no other family claims it.
    for (const [name, other] of Object.entries(exportedFamilies)) {
      if (name !== FAMILY[code]) t.false(err instanceof other, `${code} is also a ${name}`);
    }
  });
}

test('the family constructors are public: an application can throw them too', (t) => {
  const err = new InvalidInputError('ERR_INVALID_ARGUMENT', 'request body over 1 MB');
  t.true(err instanceof ShowO2Error);
  t.is(err.name, 'InvalidInputError');
  t.is(err.code, 'ERR_INVALID_ARGUMENT');
  t.is(createError('ERR_DOWNLOAD', 'x').constructor, DownloadError);
});

// ---- Errors from the addon ----

test('fromNativeError maps every code the addon can send to its family, keeping the message and cause', (t) => {
  for (const code of ERROR_CODES) {
    const native = Object.assign(new Error(`native ${code}`), { code });
    const err = fromNativeError(native, new Error());
    t.true(err instanceof ERROR_CLASSES[code], code);
    t.is(err.name, FAMILY[code]);
    t.is(err.code, code);
    t.is(err.message, `native ${code}`);
    t.is(err.cause, native);
  }
});

test("every code in the native core's error.h is an ErrorCode with a family", (t) => {
  const header = fs.readFileSync(path.join(repoRoot, 'native', 'core', 'error.h'), 'utf8');
  const nativeCodes = [...header.matchAll(/return "(ERR_[A-Z_]+)";/g)].map((m) => m[1]!);
  t.true(nativeCodes.length >= 13, `found ${nativeCodes.join(', ')}`);
  for (const code of nativeCodes) t.true(Object.hasOwn(ERROR_CLASSES, code), `${code} has no family`);
});

test('fromNativeError maps anything without a known code to an InternalError', (t) => {
  const unknown = fromNativeError(Object.assign(new Error('m'), { code: 'EWHATEVER' }), new Error());
  t.true(unknown instanceof InternalError);
  t.is(unknown.code, 'ERR_INTERNAL');
  t.is(fromNativeError(new TypeError('m'), new Error()).code, 'ERR_INTERNAL');
  t.is(fromNativeError('a string', new Error()).message, 'a string');
  // An error that already is a ShowO2Error passes through as it is.
  const own = createError('ERR_DISPOSED', 'gone');
  t.is(fromNativeError(own, new Error()), own);
});

test("callNative rejects with the family class on the caller's stack, not the native callback's", async (t) => {
  async function someCallerFunction() {
    return callNative(() => Promise.reject(Object.assign(new Error('boom'), { code: 'ERR_CUDA' })));
  }
  const err = await t.throwsAsync(someCallerFunction(), { instanceOf: CudaError, code: 'ERR_CUDA', message: 'boom' });
  t.regex(err!.stack!, /^CudaError: boom\n/);
  t.regex(err!.stack!, /someCallerFunction/);
});

test('callNative turns a synchronous throw into a rejection of the family class', async (t) => {
  await t.throwsAsync(
    callNative(() => {
      throw Object.assign(new Error('gone'), { code: 'ERR_DISPOSED' });
    }),
    { instanceOf: DisposedError, code: 'ERR_DISPOSED' },
  );
  // The addon reports a failed allocation (std::bad_alloc, or a host/GPU allocation that returned null) as
  // ERR_OUT_OF_MEMORY; no unit test can make a real allocation fail without risking the machine, so this is the
  // path such an error takes.
  await t.throwsAsync(
    callNative(() => Promise.reject(Object.assign(new Error('could not allocate 805306368 bytes of host memory'), { code: 'ERR_OUT_OF_MEMORY' }))),
    { instanceOf: OutOfMemoryError, code: 'ERR_OUT_OF_MEMORY' },
  );
});

// ---- Real throw sites, one or more per family ----

const fixtureDir = path.join(repoRoot, 'test', 'fixtures', 'showo2');
const vaeDir = path.join(repoRoot, 'test', 'fixtures', 'vae');
const vaePath = path.join(vaeDir, 'tiny_vae.pth');
const vaeConfig = JSON.parse(fs.readFileSync(path.join(vaeDir, 'tiny_vae_config.json'), 'utf8'));

/** One temporary directory for the whole file (tempDir registers an exit handler per call), and folders in it. */
const scratch = tempDir('showo2-errors-');
function subDir(): string {
  return fs.mkdtempSync(path.join(scratch, 'd-'));
}

function makeModelDir(): string {
  const dir = subDir();
  fs.copyFileSync(path.join(fixtureDir, 'tiny-model', 'config.json'), path.join(dir, 'config.json'));
  const gz = fs.readFileSync(path.join(fixtureDir, 'tiny-model', 'pytorch_model.bin.gz'));
  fs.writeFileSync(path.join(dir, 'pytorch_model.bin'), zlib.gunzipSync(gz));
  return dir;
}

test('InvalidInputError: a bad option, and bytes that are not an image', async (t) => {
  const err = invalidParameterError('threads', 'a positive integer', -1);
  t.true(err instanceof InvalidInputError);
  t.is(err.code, 'ERR_INVALID_ARGUMENT');
  t.is(err.message, 'Expected a positive integer for threads but received -1 (number)');
  await t.throwsAsync(WeightFile.open(''), { instanceOf: InvalidInputError, code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => decodeImage(new Uint8Array([1, 2, 3, 4])), { instanceOf: InvalidInputError, code: 'ERR_INVALID_IMAGE' });
});

test('FileAccessError: a weight file that does not exist (reported by the addon)', async (t) => {
  const missing = path.join(subDir(), 'missing.safetensors');
  await t.throwsAsync(WeightFile.open(missing), { instanceOf: FileAccessError, code: 'ERR_FILE_NOT_FOUND' });
  // A directory where a file belongs.
  await t.throwsAsync(WeightFile.open(subDir()), { instanceOf: FileAccessError, code: 'ERR_FILE_READ' });
});

test('ModelNotFoundError: a missing model directory', async (t) => {
  const missing = path.join(subDir(), 'no-such-model');
  await t.throwsAsync(ShowO2Model.load(missing), {
    instanceOf: ModelNotFoundError,
    code: 'ERR_MODEL_NOT_FOUND',
    message: `The model directory ${missing} does not exist`,
  });
});

test('InvalidModelFileError: a truncated weight file, and a tensor the file does not have', async (t) => {
  const dir = subDir();
  const good = writeSafetensors(path.join(dir, 'good.safetensors'), [
    { name: 'w', dtype: 'F32', shape: [4], data: new Float32Array([1, 2, 3, 4]) },
  ]);
  const bytes = fs.readFileSync(good);
  const truncated = path.join(dir, 'truncated.safetensors');
  fs.writeFileSync(truncated, bytes.subarray(0, bytes.length - 4));
  const err = await t.throwsAsync(WeightFile.open(truncated), { instanceOf: InvalidModelFileError, code: 'ERR_CORRUPT_FILE' });
  t.true(err!.message.includes(truncated), err!.message);
  t.regex(err!.stack!, /^InvalidModelFileError: /);

  const weights = await WeightFile.open(good);
  await t.throwsAsync(weights.read('nope'), { instanceOf: InvalidModelFileError, code: 'ERR_TENSOR_NOT_FOUND' });
  weights.dispose();
});

test('UnsupportedModelError: a config.json of another architecture, and an unknown file format', async (t) => {
  const dir = makeModelDir();
  fs.writeFileSync(
    path.join(dir, 'config.json'),
    JSON.stringify({ architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', hidden_size: 1536 }),
  );
  const err = await t.throwsAsync(ShowO2Model.load(dir, { vaePath }), { instanceOf: UnsupportedModelError, code: 'ERR_UNSUPPORTED_MODEL' });
  t.is(
    err!.message,
    `${path.join(dir, 'config.json')} describes another model (model_type "qwen2"), not Show-o2: showo2 runs Show-o2 ` +
      'checkpoints, whose config.json has _class_name "Showo2Qwen2_5" (e.g. showlab/show-o2-1.5B)',
  );
  // Another diffusers-style class is named by its _class_name.
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ _class_name: 'Showo', hidden_size: 2048 }));
  await t.throwsAsync(ShowO2Model.load(dir, { vaePath }), { code: 'ERR_UNSUPPORTED_MODEL', message: /\(_class_name "Showo"\)/ });

  const unknown = path.join(subDir(), 'weights.gguf');
  fs.writeFileSync(unknown, Buffer.from('GGUF\x03\x00\x00\x00 definitely not a checkpoint showo2 reads'));
  await t.throwsAsync(WeightFile.open(unknown), { instanceOf: UnsupportedModelError, code: 'ERR_UNSUPPORTED_FORMAT' });
});

test('a config.json without _class_name, model_type or architectures is still read (hand-written configs)', async (t) => {
  const dir = makeModelDir();
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  delete config._class_name;
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  const model = await ShowO2Model.load(dir, { vaePath });
  t.is(model.config.hidden_size, config.hidden_size);
  model.dispose();
});

test('CancelledError: a generation aborted before it starts (test/unit/generation.test.ts aborts one mid-run)', async (t) => {
  const model = await ShowO2Model.load(makeModelDir(), { vaePath, device: 'cpu' });
  try {
    const err = await t.throwsAsync(
      model.generateImages({ prompt: 'x', width: 64, height: 64, steps: 3, signal: AbortSignal.abort() }),
      { instanceOf: CancelledError, code: 'ERR_CANCELLED' },
    );
    t.is(err!.name, 'CancelledError');
    t.false(err instanceof DOMException, "not the DOM's AbortError");
  } finally {
    model.dispose();
  }
});

test('DisposedError: a disposed model and a disposed weight file', async (t) => {
  const model = await ShowO2Model.load(makeModelDir(), { vaePath, device: 'cpu' });
  model.dispose();
  t.throws(() => model.createChat(), { instanceOf: DisposedError, code: 'ERR_DISPOSED' });
  await t.throwsAsync(model.answer({ question: 'x' }), { instanceOf: DisposedError, code: 'ERR_DISPOSED' });
  const weights = await WeightFile.open(vaePath);
  weights.dispose();
  await t.throwsAsync(weights.read('x'), { instanceOf: DisposedError, code: 'ERR_DISPOSED' });
  const err = disposedError('WeightFile', 'read a tensor');
  t.true(err instanceof DisposedError);
  t.is(err.message, 'Cannot read a tensor: the WeightFile has been disposed');
});

test("NoGpuError: device 'cuda' where runtimeInfo() reports no usable GPU", async (t) => {
  const { cuda } = await runtimeInfo();
  if (cuda.unavailableReason === null) {
    // A usable GPU: 'cuda' must load there (test/unit/device.test.ts checks the device it lands on).
    const vae = await WanVae.load(vaePath, { config: vaeConfig, device: 'cuda' });
    t.is(vae.device, 'cuda');
    vae.dispose();
    return;
  }
  const err = await t.throwsAsync(WanVae.load(vaePath, { config: vaeConfig, device: 'cuda' }), {
    instanceOf: NoGpuError,
    code: 'ERR_NO_GPU',
  });
  t.true(err!.message.includes(cuda.unavailableReason), err!.message);
  t.false(err instanceof CudaError, 'ERR_CUDA is for CUDA failures while running');
});

test('DownloadError: offline with a file that is not in the cache', async (t) => {
  await t.throwsAsync(resolveModel('test-org/not-cached', { offline: true, cacheDir: subDir() }), {
    instanceOf: DownloadError,
    code: 'ERR_OFFLINE',
  });
});

test('NativeLoadError: no addon binary anywhere', (t) => {
  const missing = path.join(subDir(), 'showo2.node');
  t.throws(() => loadAddonFrom([{ label: 'from-source build', resolve: () => missing }]), {
    instanceOf: NativeLoadError,
    code: 'ERR_NATIVE_LOAD',
  });
});

// ---- describeValue, the wording of messages ----

const described: [unknown, string][] = [
  [-1, '-1 (number)'],
  [Number.NaN, 'NaN (number)'],
  [true, 'true (boolean)'],
  ['', '"" (string)'],
  ['bf16', '"bf16" (string)'],
  ['x'.repeat(100), `"${'x'.repeat(57)}..." (string)`],
  [10n, '10n (bigint)'],
  [null, 'null'],
  [undefined, 'undefined'],
  [[1, 2], 'an array of length 2'],
  [{}, 'an object'],
  [new Map(), 'an object (Map)'],
  [() => 1, 'a function'],
];
for (const [value, text] of described) {
  test(`describeValue(${text})`, (t) => {
    t.is(describeValue(value), text);
  });
}

// ---- docs/TROUBLESHOOTING.md ----

const troubleshooting = fs.readFileSync(path.join(repoRoot, 'docs', 'TROUBLESHOOTING.md'), 'utf8');

/** The page's `## ` sections: heading and body up to the next `## ` heading. */
function sections(markdown: string): { heading: string; body: string }[] {
  const out: { heading: string; body: string }[] = [];
  for (const line of markdown.split('\n')) {
    if (line.startsWith('## ')) out.push({ heading: line.slice(3).trim(), body: '' });
    else if (out.length > 0) out[out.length - 1]!.body += `${line}\n`;
  }
  return out;
}

test('the troubleshooting page has exactly one section per code, and none for an unknown code', (t) => {
  const headings = sections(troubleshooting).map((s) => s.heading);
  t.true(headings.length > 0);
  for (const heading of headings) t.true(Object.hasOwn(FAMILY, heading), `a section for ${heading}, which is not an ErrorCode`);
  for (const code of ERROR_CODES) t.is(headings.filter((h) => h === code).length, 1, `sections for ${code}`);
});

test("each section names its code's family class, and says what it means and what to do", (t) => {
  for (const { heading, body } of sections(troubleshooting)) {
    const classes = [...body.matchAll(/^\*\*Class:\*\* `(\w+)`$/gm)].map((m) => m[1]);
    t.deepEqual(classes, [FAMILY[heading as ErrorCode]], heading);
    t.regex(body, /^\*\*What it means:\*\* \S/m, heading);
    t.regex(body, /^\*\*What to do:\*\* \S/m, heading);
  }
});

test("the page's overview table lists each code in its family's row", (t) => {
  for (const code of ERROR_CODES) {
    const rows = troubleshooting.split('\n').filter((line) => line.startsWith('| `') && line.includes(`[\`${code}\`](#${code.toLowerCase()})`));
    t.is(rows.length, 1, code);
    t.true(rows[0]!.startsWith(`| \`${FAMILY[code]}\` |`), rows[0]);
  }
});

test('README and the ErrorCode typings point to the troubleshooting page', (t) => {
  const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  const errorsSection = readme.slice(readme.indexOf('\n## Errors\n'), readme.indexOf('\n## ', readme.indexOf('\n## Errors\n') + 1));
  t.true(errorsSection.includes('(docs/TROUBLESHOOTING.md)'));
  for (const name of Object.keys(exportedFamilies)) t.true(errorsSection.includes(`| \`${name}\` |`), name);
  const typings = fs.readFileSync(path.join(repoRoot, 'dist', 'errors.d.ts'), 'utf8');
  const beforeErrorCode = typings.slice(0, typings.indexOf('export type ErrorCode'));
  const errorCodeDoc = beforeErrorCode.slice(beforeErrorCode.lastIndexOf('/**'));
  t.true(errorCodeDoc.includes('docs/TROUBLESHOOTING.md'), errorCodeDoc);
});

// ---- No bare ShowO2Error in lib/ ----

/** Every .ts file under lib/, recursively. */
function libSources(dir = path.join(repoRoot, 'lib')): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) return libSources(file);
    return /\.m?ts$/.test(entry.name) ? [file] : [];
  });
}

/** `new ShowO2Error(`, however it is spaced or split over lines. */
const BARE_CONSTRUCTION = /\bnew\s+ShowO2Error\s*\(/;

test('nothing in lib/ but errors.ts constructs a bare ShowO2Error: every error goes through createError', (t) => {
  t.true(BARE_CONSTRUCTION.test("throw new ShowO2Error('ERR_INTERNAL', 'x')"));
  t.true(BARE_CONSTRUCTION.test('throw new\n  ShowO2Error (code, message)'));
  t.false(BARE_CONSTRUCTION.test("throw createError('ERR_INTERNAL', 'x')"));
  const files = libSources().map((f) => path.relative(repoRoot, f));
  // The scan covers lib/*.ts and lib/cli/*.ts.
  t.true(files.includes(path.join('lib', 'hub.ts')) && files.includes(path.join('lib', 'cli', 'common.ts')), files.join(', '));
  const offenders = files.filter((f) => f !== path.join('lib', 'errors.ts') && BARE_CONSTRUCTION.test(fs.readFileSync(path.join(repoRoot, f), 'utf8')));
  t.deepEqual(offenders, [], 'use createError(code, message) from lib/errors.ts, so the class matches the code');
});
