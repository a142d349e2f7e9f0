#!/usr/bin/env node
// Lints the package as it would be published: packs it with `npm pack` into a temporary directory, then checks that
// tarball with
//  - publint: package.json against the packed files (the order of the "exports" conditions, types, bin, "files",
//    module formats). Every message fails the check, suggestions included: publint's own exit code ignores
//    suggestions, and a suggestion that is a deliberate choice should be written down here, as a filter on its
//    message code with the reason, rather than scroll past unread in CI logs;
//  - @arethetypeswrong/cli (profile "strict"): the typings resolve, and describe the module format Node.js actually
//    loads, under node10, node16 from CommonJS, node16 from ESM and bundler resolution.
//
// Lifecycle scripts are skipped while packing, so dist/ must be built first: `npm run check:package` builds it, and
// `npm run test:js` runs this right after its own build. Exits 1 on any finding.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { publint } from 'publint';
import { formatMessage } from 'publint/utils';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const builtEntries = [pkg.main, ...Object.values(pkg.bin ?? {})];
const missing = builtEntries.filter((file) => !fs.existsSync(path.join(root, file)));
if (missing.length > 0) {
  console.error(`check-package: ${missing.join(', ')} not built: run "npm run check:package" (it builds dist/ first).`);
  process.exit(1);
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'showo2-check-package-'));
let failed = false;
try {
  const packed = JSON.parse(
    execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    }),
  )[0];
  const tarball = path.join(tmp, packed.filename);
  const mib = (n) => `${(n / 2 ** 20).toFixed(2)} MiB`;
  console.log(
    `check-package: ${packed.filename}, ${packed.entryCount} files, ${mib(packed.size)} packed, ` +
      `${mib(packed.unpackedSize)} unpacked`,
  );

  const bytes = fs.readFileSync(tarball);
  const { messages, pkg: packedPkg } = await publint({
    pack: { tarball: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) },
    level: 'suggestion',
    strict: true,
  });
  if (messages.length === 0) {
    console.log('check-package: publint found nothing');
  } else {
    failed = true;
    console.error(`check-package: publint found ${messages.length} problem(s):`);
    for (const message of messages) {
      console.error(`  ${message.type} ${message.code}: ${formatMessage(message, packedPkg, { color: false })}`);
    }
  }

  const attw = spawnSync(
    path.join(root, 'node_modules', '.bin', 'attw'),
    [tarball, '--profile', 'strict', '--format', 'table-flipped', '--no-emoji', '--no-color'],
    { cwd: root, stdio: 'inherit' },
  );
  if (attw.error) throw attw.error;
  if (attw.status !== 0) {
    failed = true;
    console.error(`check-package: @arethetypeswrong/cli found problems (exit code ${attw.status})`);
  }
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
