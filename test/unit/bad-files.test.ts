// Damaged and malicious checkpoints fail in open() with a typed error that names the file, never a crash.
import * as fs from 'node:fs';
import * as path from 'node:path';

import test from 'ava';

import { ShowO2Error, WeightFile } from 'showo2';
import { encodeSafetensors, fixturesDir, safetensorsParts, tempDir } from '../helpers.js';

const dir = tempDir();

function goodParts() {
  return safetensorsParts([
    { name: 'a', dtype: 'F32', shape: [4], data: new Float32Array([1, 2, 3, 4]) },
    { name: 'b', dtype: 'F32', shape: [2], data: new Float32Array([5, 6]) },
  ]);
}

async function expectOpenError(t: import('ava').ExecutionContext, file: string, code: string, detail?: RegExp) {
  const err = await t.throwsAsync(WeightFile.open(file), { instanceOf: ShowO2Error, code });
  t.true(err!.message.includes(path.basename(file)), `the message names the file: ${err!.message}`);
  if (detail) t.regex(err!.message, detail);
}

test('truncated safetensors: the data section ends early', async (t) => {
  const file = path.join(dir, 'truncated.safetensors');
  const bytes = encodeSafetensors(goodParts());
  fs.writeFileSync(file, bytes.subarray(0, bytes.length - 5));
  await expectOpenError(t, file, 'ERR_CORRUPT_FILE', /'b'/);
});

test('lying safetensors header: the header length exceeds the file', async (t) => {
  const file = path.join(dir, 'lying-header.safetensors');
  fs.writeFileSync(file, encodeSafetensors(goodParts(), 1n << 20n));
  await expectOpenError(t, file, 'ERR_CORRUPT_FILE', /header length/);
});

test('safetensors with overlapping data offsets', async (t) => {
  const file = path.join(dir, 'overlap.safetensors');
  const parts = goodParts();
  (parts.header.b as { data_offsets: number[] }).data_offsets = [8, 16];
  fs.writeFileSync(file, encodeSafetensors(parts));
  await expectOpenError(t, file, 'ERR_CORRUPT_FILE', /overlap/);
});

test('safetensors whose header is not JSON', async (t) => {
  const file = path.join(dir, 'not-json.safetensors');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(8n);
  fs.writeFileSync(file, Buffer.concat([prefix, Buffer.from('{"a": [1')]));
  await expectOpenError(t, file, 'ERR_CORRUPT_FILE');
});

test('an empty file and a random text file', async (t) => {
  const empty = path.join(dir, 'empty.bin');
  fs.writeFileSync(empty, '');
  await expectOpenError(t, empty, 'ERR_CORRUPT_FILE');
  const text = path.join(dir, 'notes.safetensors');
  fs.writeFileSync(text, 'these are not weights, just a few words of text\n');
  const err = await t.throwsAsync(WeightFile.open(text), { instanceOf: ShowO2Error });
  t.true(['ERR_CORRUPT_FILE', 'ERR_UNSUPPORTED_FORMAT'].includes(err!.code), err!.code);
  t.true(err!.message.includes('notes.safetensors'));
});

// The fixtures of tools/fixtures/make_weight_fixtures.py: each breaks one rule. The code must come through the
// addon unchanged and the message must name the file and the problem.
const badFixtures: [file: string, code: string, detail: RegExp][] = [
  ['bad/truncated.safetensors', 'ERR_CORRUPT_FILE', /past the end of the file|exceeds the file size/],
  ['bad/huge_header.safetensors', 'ERR_CORRUPT_FILE', /header length 1099511627776/],
  ['bad/overlap.safetensors', 'ERR_CORRUPT_FILE', /'a' and 'b' overlap/],
  ['bad/offsets_past_eof.safetensors', 'ERR_CORRUPT_FILE', /tensor 'w'.*past the end of the file/],
  ['bad/size_mismatch.safetensors', 'ERR_CORRUPT_FILE', /tensor 'w'/],
  ['bad/metadata_not_string.safetensors', 'ERR_CORRUPT_FILE', /'step'/],
  ['bad/unknown_dtype.safetensors', 'ERR_UNSUPPORTED_DTYPE', /F8_E4M3/],
  ['bad/forbidden_global.bin', 'ERR_UNSAFE_PICKLE', /'posix\.system'/],
  ['bad/entry_outside_file.bin', 'ERR_CORRUPT_FILE', /'tiny_model\/data\/0'.*points outside the file/],
  ['bad/entry_overlaps_cd.bin', 'ERR_CORRUPT_FILE', /overlaps the central directory/],
  ['bad/truncated.bin', 'ERR_CORRUPT_FILE', /end-of-central-directory/],
  ['bad/compressed.bin', 'ERR_UNSUPPORTED_FORMAT', /compression method 8/],
  ['bad/storage_size_mismatch.bin', 'ERR_CORRUPT_FILE', /tensor 'embed_tokens\.weight'/],
  ['bad/legacy_format.bin', 'ERR_UNSUPPORTED_FORMAT', /legacy/],
  ['bad/not_a_state_dict.bin', 'ERR_UNSUPPORTED_FORMAT', /no state dict/],
  ['bad/shard_escape/model.safetensors.index.json', 'ERR_CORRUPT_FILE', /escapes the index folder/],
  ['bad/shard_missing_tensor/model.safetensors.index.json', 'ERR_CORRUPT_FILE', /tensor 'b'/],
];

for (const [rel, code, detail] of badFixtures) {
  test(`fixture ${rel}: ${code}`, async (t) => {
    const file = path.join(fixturesDir, ...rel.split('/'));
    t.true(fs.existsSync(file), `${rel} exists`);
    const err = await t.throwsAsync(WeightFile.open(file), { instanceOf: ShowO2Error, code });
    t.true(err!.message.includes(path.join(...rel.split('/'))), `the message names the file: ${err!.message}`);
    t.regex(err!.message, detail);
  });
}
