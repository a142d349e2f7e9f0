// runtimeInfo() reports this build: version, binary, CPU features, thread count, and CUDA with a reason if unusable.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import test from 'ava';

import { runtimeInfo } from 'showo2';
import { repoAddonPath, repoAddonReason, repoRoot } from '../helpers.js';

test('runtimeInfo', async (t) => {
  const info = await runtimeInfo();
  const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
  t.is(info.version, pkg.version);
  t.is(info.addonPath, repoAddonPath);
  t.is(info.platform, `${process.platform}-${process.arch}`);
  t.is(typeof info.cpuFeatures, 'string');
  t.regex(info.cpuFeatures, /\(using (avx2|portable) kernels\)$/);
  // Both count the CPUs this process may run on (its affinity mask).
  t.is(info.defaultThreadCount, os.availableParallelism());

  const { cuda } = info;
  t.is(typeof cuda.built, 'boolean');
  // The build loaded is the one the binary reports; in the repository, the from-source build (lib/native.ts), or the
  // file SHOWO2_BINARY names.
  t.is(info.variant, cuda.built ? 'cuda' : 'cpu');
  t.is(info.variantReason, repoAddonReason);
  t.true(Array.isArray(cuda.devices));
  if (!cuda.built) {
    t.is(cuda.runtimeVersion, null);
    t.deepEqual(cuda.devices, []);
    t.regex(cuda.unavailableReason ?? '', /(no|without the) CUDA backend/);
  } else {
    t.regex(cuda.runtimeVersion ?? '', /^\d+\.\d+$/);
    const anySupported = cuda.devices.some((d) => d.supported);
    // Exactly one of: a supported device, or a reason why not.
    t.is(cuda.unavailableReason === null, anySupported);
    for (const d of cuda.devices) {
      t.regex(d.computeCapability, /^\d+\.\d+$/);
      t.true(d.totalMemoryBytes > 0);
    }
  }
});
