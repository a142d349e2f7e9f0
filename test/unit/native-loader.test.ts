// The loader's failure message, simulated by pointing it at candidate binaries that are missing or broken.
import * as fs from 'node:fs';
import * as path from 'node:path';

import test from 'ava';

import { NativeLoadError } from 'showo2';
import {
  defaultCandidates,
  loadAddonFrom,
  prebuiltBinaries,
  type LoadEnvironment,
} from '../../dist/native.js';
import { repoRoot, tempDir } from '../helpers.js';

const env: LoadEnvironment = {
  platform: 'linux',
  arch: 'x64',
  nodeVersion: '20.20.2',
  abi: '115',
  napiVersion: '10',
  libc: 'glibc',
};

const solutions = [
  'Possible solutions:',
  '  - Build it from source: npm rebuild showo2 --build-from-source',
  '  - Install the build toolchain first: a C++17 compiler, CMake >= 3.20 and Ninja or make',
  '    (Debian/Ubuntu: apt-get install -y g++ cmake ninja-build; macOS: xcode-select --install && brew install cmake).',
  '  - If node_modules was installed on another OS, CPU or Node.js version, reinstall it on this linux-x64 (glibc) machine.',
];

test('no binary anywhere: one ERR_NATIVE_LOAD listing every attempt and the possible solutions', (t) => {
  const dir = tempDir();
  const err = t.throws(
    () =>
      loadAddonFrom(
        [
          { label: 'from-source build', resolve: () => path.join(dir, 'build', 'Release', 'showo2.node') },
          { label: 'prebuilt binary', resolve: () => { throw new Error('none for linux-x64 in /pkg/prebuilds\nsecond line'); } },
        ],
        env,
      ),
    { instanceOf: NativeLoadError, code: 'ERR_NATIVE_LOAD' },
  );
  t.is(
    err!.message,
    [
      'Could not load the showo2 native addon for linux-x64 (glibc), Node.js 20.20.2 (ABI 115, N-API 10).',
      'Tried:',
      `  - from-source build: ${path.join(dir, 'build', 'Release', 'showo2.node')}: not found`,
      '  - prebuilt binary: none for linux-x64 in /pkg/prebuilds',
      ...solutions,
    ].join('\n'),
  );
});

test('a binary that exists but does not load is reported with the loader\'s reason', (t) => {
  const dir = tempDir();
  const broken = path.join(dir, 'showo2.node');
  fs.writeFileSync(broken, 'not an ELF file');
  const err = t.throws(() => loadAddonFrom([{ label: 'prebuilt binary', resolve: () => broken }], env), {
    code: 'ERR_NATIVE_LOAD',
  });
  t.true(err!.message.includes(`  - prebuilt binary: ${broken}: `));
  t.regex(err!.message, /invalid ELF header|not a valid|file too short/i);
});

test('the message adds hints for C++ runtime and CUDA library failures', (t) => {
  const dir = tempDir();
  const file = path.join(dir, 'showo2.node');
  fs.writeFileSync(file, '');
  const fail = (message: string) => () => {
    throw new Error(message);
  };
  const glibc = t.throws(() =>
    loadAddonFrom([{ label: 'x', resolve: () => file }], env, fail("/lib/libstdc++.so.6: version `GLIBCXX_3.4.32' not found")),
  );
  t.true(glibc!.message.includes('  - The binary needs a newer C/C++ runtime than this system has: build from source here.'));
  const cuda = t.throws(() =>
    loadAddonFrom([{ label: 'x', resolve: () => file }], env, fail('libcudart.so.13: cannot open shared object file')),
  );
  t.true(cuda!.message.includes('SHOWO2_CUDA=OFF npm rebuild showo2 --build-from-source'));
  t.false(glibc!.message.includes('SHOWO2_CUDA=OFF'));
});

test('the first candidate that loads wins, after earlier failures', (t) => {
  const dir = tempDir();
  const [a, b, c] = ['a.node', 'b.node', 'c.node'].map((name) => path.join(dir, name)) as [string, string, string];
  for (const f of [a, b, c]) fs.writeFileSync(f, '');
  const loaded: string[] = [];
  const result = loadAddonFrom(
    [a, b, c].map((f) => ({ label: path.basename(f), resolve: () => f })),
    env,
    (f) => {
      loaded.push(f);
      if (f === a) throw new Error('first try fails');
      return { marker: f };
    },
  );
  t.is(result.file, b);
  t.deepEqual(result.addon as unknown, { marker: b });
  t.deepEqual(loaded, [a, b]);
});

test('a path that two candidates resolve to is tried once', (t) => {
  const dir = tempDir();
  const file = path.join(dir, 'a.node');
  fs.writeFileSync(file, '');
  let loads = 0;
  const err = t.throws(
    () =>
      loadAddonFrom(
        [
          { label: 'one', resolve: () => file },
          { label: 'two', resolve: () => file },
        ],
        env,
        () => {
          loads++;
          throw new Error('does not load');
        },
      ),
    { code: 'ERR_NATIVE_LOAD' },
  );
  t.is(loads, 1);
  t.true(err!.message.includes(`Tried:\n  - one: ${file}: does not load\nPossible solutions:`));
});

test('prebuiltBinaries picks the files node-gyp-build would accept, ABI-specific first', (t) => {
  const root = tempDir();
  const dir = path.join(root, 'prebuilds', 'linux-x64');
  fs.mkdirSync(dir, { recursive: true });
  for (const name of ['showo2.napi.node', 'node.abi115.node', 'node.abi108.node', 'showo2.napi.musl.node', 'README.md']) {
    fs.writeFileSync(path.join(dir, name), '');
  }
  fs.mkdirSync(path.join(root, 'prebuilds', 'darwin-arm64'));
  fs.writeFileSync(path.join(root, 'prebuilds', 'darwin-arm64', 'showo2.napi.node'), '');
  t.deepEqual(prebuiltBinaries(root, env), [path.join(dir, 'node.abi115.node'), path.join(dir, 'showo2.napi.node')]);
  t.deepEqual(prebuiltBinaries(root, { ...env, libc: 'musl' }), [
    path.join(dir, 'node.abi115.node'),
    path.join(dir, 'showo2.napi.musl.node'),
    path.join(dir, 'showo2.napi.node'),
  ]);
  t.deepEqual(prebuiltBinaries(root, { ...env, arch: 'arm64' }), []);
});

test('the default candidates find this repository\'s build and load it', (t) => {
  const { addon, file } = loadAddonFrom(defaultCandidates(repoRoot));
  t.is(file, path.join(repoRoot, 'build', 'Release', 'showo2.node'));
  t.is(typeof addon.WeightFile.open, 'function');
  t.is(typeof addon.runtimeInfo, 'function');
  t.is(typeof addon.convertToSafetensors, 'function');
});
