// `import` and `require` both work from a consumer project, expose the same names, and share one copy of each class.
import * as fs from 'node:fs';
import * as path from 'node:path';

import test from 'ava';

import { consumerProject, repoRoot, runNode } from '../helpers.js';

// The public API. Adding an export means adding it here and to lib/index.mts.
const publicNames = [
  'CancelledError',
  'ChatSession',
  'CudaError',
  'DEFAULT_JPEG_QUALITY',
  'DEFAULT_SYSTEM_PROMPT',
  'DEMO_MODEL',
  'DTYPES',
  'DisposedError',
  'DownloadError',
  'FLOAT_DTYPES',
  'FileAccessError',
  'InternalError',
  'InvalidInputError',
  'InvalidModelFileError',
  'MAX_IMAGE_PIXELS',
  'MAX_IMAGE_SIDE',
  'ModelNotFoundError',
  'NativeLoadError',
  'NoGpuError',
  'OutOfMemoryError',
  'ShowO2Error',
  'ShowO2Model',
  'ShowO2Tokenizer',
  'UnsupportedModelError',
  'VAE_FILE',
  'VAE_REPO',
  'WanVae',
  'WeightFile',
  'bf16ToFloat32',
  'centerCrop',
  'convertToSafetensors',
  'decodeImage',
  'encodeAnimatedPng',
  'encodeJpeg',
  'encodePng',
  'f16ToFloat32',
  'imageToTensor',
  'invalidParameterError',
  'letterbox',
  'readImageSize',
  'resizeBicubic',
  'resizeShorterSide',
  'resolveModel',
  'runtimeInfo',
  'tensorToImage',
  'toFloat32Array',
  'writeImage',
];

const project = consumerProject();

test('CommonJS: require("showo2")', async (t) => {
  const r = await runNode(['-e', 'console.log(JSON.stringify(Object.keys(require("showo2")).sort()))'], { cwd: project });
  t.is(r.code, 0, r.stderr);
  t.deepEqual(JSON.parse(r.stdout), publicNames);
});

test('ESM: import { ... } from "showo2", the same objects as require, and a native call', async (t) => {
  const script = `
    import * as all from 'showo2';
    import { WeightFile, ShowO2Error, runtimeInfo } from 'showo2';
    import { createRequire } from 'node:module';
    const cjs = createRequire(import.meta.url)('showo2');
    const info = await runtimeInfo();
    console.log(JSON.stringify({
      names: Object.keys(all).sort(),
      sameClasses: WeightFile === cjs.WeightFile && ShowO2Error === cjs.ShowO2Error,
      threads: info.defaultThreadCount,
    }));`;
  const r = await runNode(['--input-type=module', '-e', script], { cwd: project });
  t.is(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { names: string[]; sameClasses: boolean; threads: number };
  t.deepEqual(out.names, publicNames);
  t.true(out.sameClasses);
  t.true(out.threads >= 1);
});

test('WebP decoding (libwebp in WebAssembly, loaded from a dependency) works from require and from import', async (t) => {
  const file = JSON.stringify(path.join(repoRoot, 'test', 'fixtures', 'images', 'photo.webp'));
  const body = `const image = decodeImage(readFileSync(${file})); console.log(image.width + 'x' + image.height, image.data.length);`;
  const cjs = await runNode(['-e', `const { decodeImage } = require('showo2'); const { readFileSync } = require('node:fs'); ${body}`], { cwd: project });
  t.is(cjs.code, 0, cjs.stderr);
  t.is(cjs.stdout, '37x29 3219\n');
  const esm = await runNode(['--input-type=module', '-e', `import { decodeImage } from 'showo2'; import { readFileSync } from 'node:fs'; ${body}`], { cwd: project });
  t.is(esm.code, 0, esm.stderr);
  t.is(esm.stdout, '37x29 3219\n');
});

test('the package resolves through "exports": deep imports are closed', async (t) => {
  const r = await runNode(['-e', 'require("showo2/dist/native.js")'], { cwd: project });
  t.not(r.code, 0);
  t.regex(r.stderr, /ERR_PACKAGE_PATH_NOT_EXPORTED/);
});

test('the typings resolve for TypeScript consumers of both module systems', async (t) => {
  const dir = consumerProject();
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  fs.writeFileSync(
    path.join(dir, 'esm.ts'),
    [
      "import { WeightFile, toFloat32Array, type TensorData } from 'showo2';",
      "const weights: WeightFile = await WeightFile.open('model.safetensors');",
      "const tensor: TensorData = await weights.read('w');",
      "if (tensor.dtype === 'F32') { const f: Float32Array = tensor.data; console.log(f); }",
      'console.log(toFloat32Array(tensor));',
    ].join('\n'),
  );
  fs.writeFileSync(
    path.join(dir, 'cjs.cts'),
    "import showo2 = require('showo2');\nconst p: Promise<showo2.WeightFile> = showo2.WeightFile.open('x');\nconsole.log(p);\n",
  );
  const tsc = path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = await runNode(
    [tsc, '--noEmit', '--strict', '--module', 'nodenext', '--target', 'es2022', '--lib', 'es2022,esnext.disposable',
      '--types', 'node', '--typeRoots', path.join(repoRoot, 'node_modules', '@types'), 'esm.ts', 'cjs.cts'],
    { cwd: dir },
  );
  t.is(r.code, 0, r.stdout + r.stderr);
});
