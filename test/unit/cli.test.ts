// The `showo2` command line, run as a user would: exit codes, output, and "error ERR_CODE: message" on failure.
import * as fs from 'node:fs';
import * as path from 'node:path';

import test from 'ava';

import { troubleshootingLink } from '../../dist/cli/common.js';
import { ERROR_CODES } from '../../dist/errors.js';
import { repoRoot, runCli, runNode, tempDir, writeSafetensors } from '../helpers.js';

const dir = tempDir();
const src = writeSafetensors(
  path.join(dir, 'model.safetensors'),
  [
    { name: 'layers.0.weight', dtype: 'F32', shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
    { name: 'ids', dtype: 'I32', shape: [3], data: new Int32Array([1, 2, 3]) },
  ],
  { format: 'pt' },
);
const troubleshootingPage = path.join(repoRoot, 'docs', 'TROUBLESHOOTING.md');
const version = (JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;

test('--version and help', async (t) => {
  const v = await runCli(['--version']);
  t.is(v.code, 0);
  t.is(v.stdout.trim(), version);
  const help = await runCli(['--help']);
  t.is(help.code, 0);
  t.regex(help.stdout, /^Usage: showo2 <command>/);
  const none = await runCli([]);
  t.is(none.code, 2);
  t.regex(none.stdout, /^Usage: showo2 <command>/);
});

test('usage errors exit 2 with "error ERR_INVALID_ARGUMENT: ..."', async (t) => {
  const unknown = await runCli(['bogus']);
  t.is(unknown.code, 2);
  t.is(unknown.stderr.split('\n')[0], 'error ERR_INVALID_ARGUMENT: Unknown command "bogus"');
  const missing = await runCli(['convert', src]);
  t.is(missing.code, 2);
  t.is(missing.stderr.split('\n')[0], 'error ERR_INVALID_ARGUMENT: convert takes <src> <dst> (got 1 arguments)');
  const badOption = await runCli(['inspect', src, '--bogus']);
  t.is(badOption.code, 2);
  t.regex(badOption.stderr, /^error ERR_INVALID_ARGUMENT: Unknown option '--bogus'/);
  const badDtype = await runCli(['convert', src, path.join(dir, 'x.safetensors'), '--dtype', 'q4']);
  t.is(badDtype.code, 2);
  t.deepEqual(badDtype.stderr.trim().split('\n'), [
    'error ERR_INVALID_ARGUMENT: Expected one of f32, bf16, f16 for --dtype but received "q4" (string)',
    'Usage: showo2 convert <src> <dst> [--dtype f32|bf16|f16]',
    'Run "showo2 help convert" for all options.',
  ]);
});

test('info prints the runtime, --json as JSON', async (t) => {
  const text = await runCli(['info']);
  t.is(text.code, 0, text.stderr);
  t.regex(text.stdout, new RegExp(`^showo2 ${version.replace(/\./g, '\\.')} \\(${process.platform}-${process.arch}, `));
  t.regex(text.stdout, /\ncpu features: .*\(using (avx2|portable) kernels\)\n/);
  t.regex(text.stdout, /\ngpu: +(available|unavailable: .+)\n/);
  const json = await runCli(['info', '--json']);
  t.is(json.code, 0, json.stderr);
  const info = JSON.parse(json.stdout) as { version: string; defaultThreadCount: number; cuda: { built: boolean } };
  t.is(info.version, version);
  t.true(info.defaultThreadCount >= 1);
  t.is(typeof info.cuda.built, 'boolean');
});

test('inspect lists tensors', async (t) => {
  const r = await runCli(['inspect', src]);
  t.is(r.code, 0, r.stderr);
  t.is(
    r.stdout,
    [
      `${src}: safetensors, 2 tensors`,
      'metadata format: pt',
      'ids              I32   [3]',
      'layers.0.weight  F32   [2, 2]',
      '',
    ].join('\n'),
  );
  const json = await runCli(['inspect', src, '--json']);
  t.deepEqual(JSON.parse(json.stdout), {
    path: src,
    format: 'safetensors',
    metadata: { format: 'pt' },
    tensors: [
      { name: 'ids', dtype: 'I32', shape: [3] },
      { name: 'layers.0.weight', dtype: 'F32', shape: [2, 2] },
    ],
  });
});

test('inspect of a missing file exits 1 with the error code, a hint and the troubleshooting section', async (t) => {
  const missing = path.join(dir, 'missing.bin');
  const r = await runCli(['inspect', missing]);
  t.is(r.code, 1);
  const lines = r.stderr.split('\n');
  t.regex(lines[0]!, /^error ERR_FILE_NOT_FOUND: .*missing\.bin/);
  t.regex(lines[1]!, /^hint: Check the path/);
  t.is(lines[2], `see: ${troubleshootingPage}#err_file_not_found`);
  t.is(r.stdout, '');
  // --json: the same, machine-readable, with the error's class.
  const json = await runCli(['inspect', missing, '--json']);
  t.is(json.code, 1);
  const { error } = JSON.parse(json.stdout) as { error: Record<string, string> };
  t.deepEqual(Object.keys(error), ['code', 'name', 'message', 'hint', 'troubleshooting']);
  t.is(error.code, 'ERR_FILE_NOT_FOUND');
  t.is(error.name, 'FileAccessError');
  t.regex(error.message!, /missing\.bin/);
  t.is(error.troubleshooting, `${troubleshootingPage}#err_file_not_found`);
});

test('a usage error with --json names the code and class too', async (t) => {
  const r = await runCli(['convert', src, '--json']);
  t.is(r.code, 2);
  t.deepEqual(JSON.parse(r.stdout), {
    error: { code: 'ERR_INVALID_ARGUMENT', name: 'InvalidInputError', message: 'convert takes <src> <dst> (got 1 arguments)' },
  });
});

test('the troubleshooting link of every code points at a section of the shipped page', (t) => {
  const page = fs.readFileSync(troubleshootingPage, 'utf8');
  for (const code of ERROR_CODES) {
    const link = troubleshootingLink(code);
    const [file, anchor] = link.split('#');
    t.is(file, troubleshootingPage);
    // GitHub and Markdown viewers derive a heading's anchor by lower-casing it (underscores stay).
    const heading = page.split('\n').find((line) => line.startsWith('## ') && line.slice(3).trim().toLowerCase() === anchor);
    t.is(heading, `## ${code}`, link);
  }
  const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { files: string[] };
  t.true(pkg.files.includes('docs/TROUBLESHOOTING.md'), 'the page ships in the npm package, where the CLI points');
});

test('convert --dtype bf16 writes a safetensors file that inspect reads back', async (t) => {
  const dst = path.join(dir, 'out.safetensors');
  const r = await runCli(['convert', src, dst, '--dtype', 'bf16']);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, `wrote 2 tensors to ${dst}\n`);
  const back = JSON.parse((await runCli(['inspect', dst, '--json'])).stdout) as { tensors: { name: string; dtype: string }[] };
  t.deepEqual(back.tensors.map((x) => `${x.name}:${x.dtype}`), ['ids:I32', 'layers.0.weight:BF16']);
});

test('a flag without its value is a usage error (exit 2); a corrupt file exits 1 with its code and hint', async (t) => {
  const noValue = await runCli(['convert', src, path.join(dir, 'y.safetensors'), '--dtype']);
  t.is(noValue.code, 2);
  t.deepEqual(noValue.stderr.trim().split('\n'), [
    "error ERR_INVALID_ARGUMENT: Option '--dtype <value>' argument missing",
    'Usage: showo2 convert <src> <dst> [--dtype f32|bf16|f16]',
    'Run "showo2 help convert" for all options.',
  ]);
  const corrupt = path.join(dir, 'corrupt.safetensors');
  fs.writeFileSync(corrupt, 'not a safetensors file');
  for (const args of [['inspect', corrupt], ['convert', corrupt, path.join(dir, 'z.safetensors')]]) {
    const r = await runCli(args);
    t.is(r.code, 1, args.join(' '));
    const lines = r.stderr.split('\n').filter((l) => !l.startsWith('converting '));
    t.regex(lines[0]!, /^error ERR_CORRUPT_FILE: .*corrupt\.safetensors: /);
    t.is(lines[1], 'hint: The file is damaged or incomplete: download it again.');
    t.is(lines[2], `see: ${troubleshootingPage}#err_corrupt_file`);
  }
  t.false(fs.existsSync(path.join(dir, 'z.safetensors')));
});

test('no --model and no demo model in the installation: a usage error saying how to name one', async (t) => {
  // A copy of the package without models/: the CLI finds the demo model beside its own dist/.
  const pkg = path.join(tempDir('showo2-no-demo-'), 'showo2');
  fs.mkdirSync(pkg);
  fs.cpSync(path.join(repoRoot, 'dist'), path.join(pkg, 'dist'), { recursive: true });
  fs.copyFileSync(path.join(repoRoot, 'package.json'), path.join(pkg, 'package.json'));
  fs.symlinkSync(path.join(repoRoot, 'node_modules'), path.join(pkg, 'node_modules'), 'dir');
  const env = { ...process.env };
  delete env.SHOWO2_MODEL;
  for (const args of [['generate', 'a red circle'], ['ask', 'q', '--model', '']]) {
    const r = await runNode([path.join(pkg, 'dist', 'cli.js'), ...args, '-q'], { env });
    t.is(r.code, 2, r.stderr);
    t.is(
      r.stderr.split('\n')[0],
      `error ERR_INVALID_ARGUMENT: No model given and the bundled demo model is missing (${path.join(pkg, 'models', 'demo')}): ` +
        'pass --model DIR|REPO (e.g. --model showlab/show-o2-1.5B) or set SHOWO2_MODEL',
    );
  }
});

test('a model with its own small vocabulary and no tokenizer.json: the error and hint say to pass --tokenizer', async (t) => {
  const model = tempDir();
  for (const file of ['config.json', 'model.safetensors', 'vae.safetensors']) {
    fs.symlinkSync(path.join(repoRoot, 'models', 'demo', file), path.join(model, file));
  }
  const image = path.join(repoRoot, 'test', 'fixtures', 'demo', 'understanding', '000.png');
  const r = await runCli(['ask', image, 'What shape is in the image?', '--model', model]);
  t.is(r.code, 1);
  const lines = r.stderr.split('\n').filter((l) => !l.startsWith('loading '));
  t.regex(lines[0]!, /^error ERR_INVALID_ARGUMENT: The model in .* has a vocabulary of \d+ tokens .* and no tokenizer\.json; .*pass --tokenizer\.$/);
  t.is(lines[1], "hint: Pass the model's tokenizer with --tokenizer FILE (its tokenizer.json, or the directory that holds it).");
  const ok = await runCli(['ask', image, 'What colour is the background?', '--model', model, '--tokenizer', path.join(repoRoot, 'models', 'demo', 'tokenizer.json'), '-q']);
  t.is(ok.code, 0, ok.stderr);
});
