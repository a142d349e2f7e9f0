// The tiny random-weight Show-o2 of tools/fixtures/make_showo2_fixtures.py as a published model directory
// (config.json + pytorch_model.bin, gunzipped from the committed fixture), for the tests and the scripts they run in
// child processes and worker threads.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';

/** The repository root (build-test/scenarios/ is two levels below it). */
export const root = path.resolve(__dirname, '..', '..');
export const tinyModelFixture = path.join(root, 'test', 'fixtures', 'showo2', 'tiny-model');
export const tinyVaePath = path.join(root, 'test', 'fixtures', 'vae', 'tiny_vae.pth');
export const photoPath = path.join(root, 'test', 'fixtures', 'images', 'photo.png');

/**
 * Writes the tiny model into `dir` (a fresh temporary directory when omitted; the caller removes it) and returns the
 * directory.
 */
export function writeTinyModel(dir = fs.mkdtempSync(path.join(os.tmpdir(), 'showo2-tiny-'))): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(path.join(tinyModelFixture, 'config.json'), path.join(dir, 'config.json'));
  const gz = fs.readFileSync(path.join(tinyModelFixture, 'pytorch_model.bin.gz'));
  fs.writeFileSync(path.join(dir, 'pytorch_model.bin'), zlib.gunzipSync(gz));
  return dir;
}

/** A small seeded PRNG (mulberry32): uniform floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
