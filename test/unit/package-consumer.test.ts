// The package as a user gets it: `npm pack` of the built package, installed from the tarball into a fresh project,
// then used from CommonJS, ESM, TypeScript (nodenext and bundler resolution) and through its `showo2` bin. Also checks
// what the tarball ships, and logs its size.
//
// The install must compile nothing, so the already built addon goes into the tarball as a prebuilt binary (the
// layout `npm run prebuild` writes and node-gyp-build reads), and the install runs with a PATH on which every
// compiler and build tool fails. Dependencies come from the npm cache the repository's own install filled
// (--prefer-offline). Everything lives in one temporary directory, removed when the test process exits.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

import test from 'ava';

import { repoRoot, runCommand, runNode, tempDir, type RunResult } from '../helpers.js';

const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  main: string;
  types: string;
  exports: unknown;
  bin: Record<string, string>;
};

/** What `npm pack --json` reports about one tarball. */
interface PackResult {
  filename: string;
  size: number;
  unpackedSize: number;
  entryCount: number;
  files: { path: string; size: number }[];
}

/** Files that must not ship, each with what it is. */
const forbidden: [RegExp, string][] = [
  [/^build-test\//, 'compiled tests'],
  [/^build(-[^/]+)?\//, 'a CMake or cmake-js build directory'],
  [/^test\//, 'tests'],
  [/(^|\/)fixtures?\//, 'test fixtures'],
  [/^bench\//, 'benchmarks'],
  // The one tool that ships: cmake/cublas_headers.cmake runs it when a from-source CUDA build finds no cuBLASLt headers.
  [/^tools\/(?!fetch_cublas_headers\.sh$)/, 'development tools'],
  [/(^|\/)\.devcarry(\/|$)/, 'device-run scratch files'],
  [/^\.ci\//, 'CI scripts'],
  [/^docs\/api\//, 'generated API docs'],
  [/(^|\/)node_modules\//, 'installed dependencies'],
  [/^(?!prebuilds\/[^/]+\/[^/]+\.node$).*\.node$/, 'a native binary outside prebuilds/<platform>-<arch>/'],
  [/\.(tgz|tsbuildinfo|log|py|pyc)$/, 'a tarball, build info, log or Python file'],
  [/(^|\/)__pycache__\//, 'Python bytecode'],
];

/** Every file package.json points at (main, types, exports targets, bin), without the leading "./". */
function entryFiles(): string[] {
  const targets: string[] = [pkg.main, pkg.types, ...Object.values(pkg.bin)];
  const walk = (value: unknown): void => {
    if (typeof value === 'string') targets.push(value);
    else if (value && typeof value === 'object') Object.values(value).forEach(walk);
  };
  walk(pkg.exports);
  return [...new Set(targets.map((t) => path.posix.normalize(t)))].sort();
}

/** Files the tarball needs beyond the entry points. */
const required = [
  'README.md',
  'typings/addon.d.ts', // dist/native.d.ts imports the addon's types from it
  // A from-source build in the installed package (no prebuilt binary fits, or --build-from-source) needs these.
  'CMakeLists.txt',
  'cmake/cublas_headers.cmake',
  'tools/fetch_cublas_headers.sh',
  'native/binding/addon.cpp',
];

/** Where `npm run prebuild` puts the addon, the name node-gyp-build and lib/native.ts look for. */
const prebuildPath = path.posix.join(
  'prebuilds',
  `${process.platform}-${process.arch}`,
  `showo2.napi${process.platform !== 'linux' ? '' : fs.existsSync('/etc/alpine-release') ? '.musl' : '.glibc'}.node`,
);

/** Programs that would mean the install is compiling something: each fails loudly. */
const buildTools = ['cmake', 'ninja', 'make', 'cc', 'gcc', 'g++', 'c++', 'clang', 'clang++', 'nvcc'];

const work = fs.realpathSync(tempDir('showo2-package-'));
const project = path.join(work, 'consumer');
const installed = path.join(project, 'node_modules', pkg.name);
const noToolchain = path.join(work, 'no-toolchain');

/**
 * This process's environment minus what `npm test` adds for the repository: npm_package_* and npm_lifecycle_*, the
 * prefixes (a nested npm would work on the repository instead of the consumer project), the repository's
 * node_modules/.bin on PATH, and flags such as --build-from-source. The PATH starts with the failing build tools.
 */
function consumerEnv(): NodeJS.ProcessEnv {
  const dropped = new Set([
    'npm_config_prefix',
    'npm_config_local_prefix',
    'npm_config_global_prefix',
    'npm_config_global',
    'npm_config_build_from_source',
    'npm_config_ignore_scripts',
    'npm_config_dry_run',
    'npm_config_omit',
    'npm_config_include',
  ]);
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    const lower = key.toLowerCase();
    if (lower.startsWith('npm_') && (!lower.startsWith('npm_config_') || dropped.has(lower))) continue;
    if (key === 'INIT_CWD') continue;
    env[key] = value;
  }
  const pathEntries = (process.env.PATH ?? '').split(path.delimiter).filter((p) => p && !p.startsWith(repoRoot));
  env.PATH = [noToolchain, ...pathEntries].join(path.delimiter);
  return env;
}
const env = consumerEnv();

function check(r: RunResult, what: string): RunResult {
  if (r.code !== 0) throw new Error(`${what} exited with ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** Runs node in the consumer project; fails with its output unless it exits 0. */
async function nodeInProject(args: string[], what: string): Promise<string> {
  return check(await runNode(args, { cwd: project, env }), what).stdout;
}

/** Runs the installed bin through node_modules/.bin, as npm scripts and npx do. */
async function showo2(args: string[]): Promise<string> {
  const bin = path.join(project, 'node_modules', '.bin', 'showo2');
  return check(await runCommand(bin, args, { cwd: project, env }), `showo2 ${args.join(' ')}`).stdout;
}

async function npmPack(cwd: string, destination: string): Promise<PackResult> {
  // Lifecycle scripts off: dist/ is already built (npm test builds it first), and `prepare` would rebuild it.
  const r = check(
    await runCommand('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', destination], { cwd, env }),
    `npm pack in ${cwd}`,
  );
  return (JSON.parse(r.stdout) as PackResult[])[0]!;
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(2)} MiB`;

let published: PackResult;
let withPrebuild: PackResult;
let installLog: string;
let installSeconds: number;

test.before(async () => {
  fs.mkdirSync(noToolchain);
  for (const tool of buildTools) {
    const message = `${tool} ran during the install of the showo2 tarball: it must not compile anything`;
    fs.writeFileSync(path.join(noToolchain, tool), `#!/bin/sh\necho "${message}" >&2\nexit 1\n`, { mode: 0o755 });
  }

  // 1. The tarball `npm publish` would upload.
  published = await npmPack(repoRoot, work);

  // 2. The same tarball plus the built addon as a prebuilt binary, repacked from its own contents.
  const stage = path.join(work, 'stage');
  fs.mkdirSync(stage);
  check(await runCommand('tar', ['-xzf', path.join(work, published.filename), '-C', stage], { env }), 'tar -x');
  const addon = path.join(stage, 'package', prebuildPath);
  fs.mkdirSync(path.dirname(addon), { recursive: true });
  fs.copyFileSync(path.join(repoRoot, 'build', 'Release', 'showo2.node'), addon);
  fs.mkdirSync(path.join(work, 'with-prebuild'));
  withPrebuild = await npmPack(path.join(stage, 'package'), path.join(work, 'with-prebuild'));

  // 3. A fresh project that installs it.
  fs.mkdirSync(project);
  fs.writeFileSync(
    path.join(project, 'package.json'),
    JSON.stringify({ name: 'showo2-consumer', version: '1.0.0', private: true }, null, 2),
  );
  const started = performance.now();
  const r = check(
    await runCommand(
      'npm',
      ['install', '--prefer-offline', '--no-audit', '--no-fund', '--foreground-scripts',
        path.join(work, 'with-prebuild', withPrebuild.filename)],
      { cwd: project, env },
    ),
    'npm install of the tarball',
  );
  installSeconds = (performance.now() - started) / 1000;
  installLog = r.stdout + r.stderr;
});

test('the tarball ships the package, and nothing else from the repository', (t) => {
  const files = published.files.map((f) => f.path);
  for (const file of [...entryFiles(), ...required]) t.true(files.includes(file), `${file} is not in the tarball`);
  const unwanted = (list: string[]) =>
    list.flatMap((file) => forbidden.filter(([re]) => re.test(file)).map(([, what]) => `${file} (${what})`));
  t.deepEqual(unwanted(files), []);
  t.deepEqual(unwanted(withPrebuild.files.map((f) => f.path)), []);
  t.deepEqual(
    withPrebuild.files.map((f) => f.path).filter((f) => !files.includes(f)),
    files.includes(prebuildPath) ? [] : [prebuildPath], // already there after `npm run prebuild`
    'repacking added exactly the prebuilt addon',
  );
  t.log(
    `${published.filename}: ${published.entryCount} files, ${mib(published.size)} packed, ` +
      `${mib(published.unpackedSize)} unpacked`,
  );
  t.log(
    `with the ${process.platform}-${process.arch} addon as a prebuilt binary: ${mib(withPrebuild.size)} packed, ` +
      `${mib(withPrebuild.unpackedSize)} unpacked`,
  );
});

test('the source maps point at sources that ship', (t) => {
  const maps = published.files.map((f) => f.path).filter((f) => f.endsWith('.map'));
  t.true(maps.length > 0);
  const missing: string[] = [];
  for (const map of maps) {
    const { sources } = JSON.parse(fs.readFileSync(path.join(installed, map), 'utf8')) as { sources: string[] };
    for (const source of sources) {
      const file = path.join(installed, path.dirname(map), source);
      if (!fs.existsSync(file)) missing.push(`${map} -> ${source}`);
    }
  }
  t.deepEqual(missing, []);
});

test('npm install of the tarball uses the prebuilt addon and compiles nothing', (t) => {
  t.log(`npm install took ${installSeconds.toFixed(1)} s`);
  t.false(fs.existsSync(path.join(installed, 'build')), 'the install created a build/ directory');
  // npm prints "> showo2@<version> <script>" before each script it runs (--foreground-scripts).
  t.notRegex(installLog, /^> \S+ build:native$|^> cmake-js /m, installLog);
  t.true(fs.existsSync(path.join(installed, prebuildPath)));
});

test('require("showo2") and import("showo2") resolve to the installed package and give the same names', async (t) => {
  const cjs = await nodeInProject(
    ['-e', 'const m = require("showo2"); console.log(JSON.stringify({ file: require.resolve("showo2"), names: Object.keys(m).sort() }))'],
    'require("showo2")',
  );
  const esm = await nodeInProject(
    ['--input-type=module', '-e',
      'const m = await import("showo2"); console.log(JSON.stringify({ file: import.meta.resolve("showo2"), names: Object.keys(m).sort() }))'],
    'import("showo2")',
  );
  const repo = check(
    await runNode(['-e', 'console.log(JSON.stringify(Object.keys(require("showo2")).sort()))'], { cwd: repoRoot, env }),
    'require("showo2") in the repository',
  );
  const fromRequire = JSON.parse(cjs) as { file: string; names: string[] };
  const fromImport = JSON.parse(esm) as { file: string; names: string[] };
  t.is(fromRequire.file, path.join(installed, 'dist', 'index.js'));
  t.is(fromImport.file, pathToFileURL(path.join(installed, 'dist', 'index.mjs')).href);
  t.deepEqual(fromImport.names, fromRequire.names);
  t.deepEqual(fromRequire.names, JSON.parse(repo.stdout) as string[], 'the installed package exports what dist/ does');
});

/**
 * Type-checks files in the consumer project with the repository's TypeScript and @types/node (the only things not
 * installed there). Returns the exit code, the errors, and which declaration file each one's `import 'showo2'` resolved
 * to.
 */
async function typeCheck(name: string, compilerOptions: object, files: Record<string, string>) {
  for (const [file, source] of Object.entries(files)) fs.writeFileSync(path.join(project, file), source);
  const config = `tsconfig.${name}.json`;
  fs.writeFileSync(
    path.join(project, config),
    JSON.stringify({
      compilerOptions: {
        target: 'es2022',
        strict: true,
        noEmit: true,
        types: ['node'],
        typeRoots: [path.join(repoRoot, 'node_modules', '@types')],
        ...compilerOptions,
      },
      files: Object.keys(files),
    }),
  );
  const tsc = path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = await runNode([tsc, '-p', config, '--traceResolution'], { cwd: project, env });
  let errors = r.stdout.split('\n').filter((line) => /error TS\d+/.test(line)).join('\n');
  if (r.code !== 0 && errors === '') errors = r.stdout.slice(-4000) + r.stderr;
  const resolved: Record<string, string> = {};
  const re = new RegExp(
    "======== Resolving module 'showo2' from '([^']+)'\\. ========[\\s\\S]*?" +
      "======== Module name 'showo2' was (?:successfully resolved to '([^']+)'|not resolved)",
    'g',
  );
  for (const m of r.stdout.matchAll(re)) {
    resolved[path.basename(m[1]!)] = m[2] ? path.relative(installed, m[2]) : 'not resolved';
  }
  return { code: r.code, errors, resolved };
}

const esmSource = `
import { ShowO2Error, ShowO2Model, WeightFile, runtimeInfo, type RuntimeInfo, type TensorData } from 'showo2';

const info: RuntimeInfo = await runtimeInfo();
const threads: number = info.defaultThreadCount;
export async function firstTensor(file: string): Promise<TensorData> {
  await using weights = await WeightFile.open(file);
  return weights.read(weights.tensors[0]!.name);
}
export function isShowO2Error(err: unknown): string | undefined {
  return err instanceof ShowO2Error ? err.code : undefined;
}
// @ts-expect-error: the options are checked, so a misspelt one is an error (not an any)
export const bad = ShowO2Model.load('dir', { devise: 'cpu' });
console.log(threads);
`;

test('TypeScript with module nodenext type-checks an ES module and a CommonJS file that use the package', async (t) => {
  // lib without DOM or esnext.disposable: a Node.js project needs neither (@types/node declares Symbol.asyncDispose).
  // skipLibCheck off: the package's declaration files must compile under the consumer's settings.
  const options = { module: 'nodenext', moduleResolution: 'nodenext', lib: ['es2022'], skipLibCheck: false };
  const r = await typeCheck('nodenext', options, {
    'esm.mts': esmSource,
    'cjs.cts': `
import showo2 = require('showo2');
import { WeightFile, type TensorInfo } from 'showo2';

export async function names(file: string): Promise<string[]> {
  const weights: WeightFile = await showo2.WeightFile.open(file);
  try {
    return weights.tensors.map((tensor: TensorInfo) => tensor.name);
  } finally {
    weights.dispose();
  }
}
// @ts-expect-error: WeightFile.open takes a path, not a number
void WeightFile.open(42);
`,
  });
  t.is(r.code, 0, r.errors);
  t.deepEqual(r.resolved, { 'esm.mts': 'dist/index.d.mts', 'cjs.cts': 'dist/index.d.ts' });
});

test('TypeScript with moduleResolution bundler type-checks a module that uses the package', async (t) => {
  // The default lib (with DOM) and skipLibCheck, as bundled apps usually have; the nodenext test checks the .d.ts files.
  const options = { module: 'esnext', moduleResolution: 'bundler', skipLibCheck: true };
  const r = await typeCheck('bundler', options, { 'bundler.ts': esmSource });
  t.is(r.code, 0, r.errors);
  t.deepEqual(r.resolved, { 'bundler.ts': 'dist/index.d.mts' });
});

test('the installed showo2 bin runs', async (t) => {
  t.regex(await showo2(['--help']), /^Usage: showo2 <command>/);
  const npx = check(await runCommand('npx', ['--no-install', 'showo2', '--version'], { cwd: project, env }), 'npx showo2');
  t.is(npx.stdout.trim(), pkg.version);
});

test('the native addon loads from the installed package, from the bin and from both module systems', async (t) => {
  const addon = path.join(installed, prebuildPath);
  const report = JSON.parse(await showo2(['doctor', '--json'])) as { addon: unknown };
  t.deepEqual(report.addon, { loaded: true, path: addon, source: 'prebuilt binary shipped in the package', error: null });
  const cjs = await nodeInProject(
    ['-e', 'require("showo2").runtimeInfo().then((info) => console.log(info.addonPath))'],
    'runtimeInfo() from require',
  );
  const esm = await nodeInProject(
    ['--input-type=module', '-e', 'import { runtimeInfo } from "showo2"; console.log((await runtimeInfo()).addonPath)'],
    'runtimeInfo() from import',
  );
  t.is(cjs.trim(), addon);
  t.is(esm.trim(), addon);
});
