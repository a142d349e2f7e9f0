// Captions every image in a folder and writes one JSON line per image.
//
//   node examples/batch-captioner.mjs <model-dir-or-repo-id> <image-folder> [--vae Wan2.1_VAE.pth] > captions.jsonl
//
// One model, one chat-free answer per image, greedy decoding (the reference demo's); a bad file is reported on its
// line and the batch goes on.
import { readdir } from 'node:fs/promises';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

import { ShowO2Model } from 'showo2';

const { positionals, values } = parseArgs({ allowPositionals: true, options: { vae: { type: 'string' } } });
if (positionals.length !== 2) {
  console.error('usage: node examples/batch-captioner.mjs <model-dir-or-repo-id> <image-folder> [--vae PATH]');
  process.exit(2);
}
const [source, folder] = positionals;
const images = (await readdir(folder)).filter((f) => /\.(png|jpe?g|webp)$/i.test(f)).sort();

const model = await ShowO2Model.load(source, values.vae ? { vaePath: values.vae } : {});
try {
  for (const [i, name] of images.entries()) {
    const file = path.join(folder, name);
    try {
      const { text, usage } = await model.answer({
        image: file,
        question: 'Describe this image in one sentence.',
        maxTokens: 60,
      });
      process.stdout.write(JSON.stringify({ file, caption: text.trim(), tokens: usage.completionTokens }) + '\n');
    } catch (err) {
      process.stdout.write(JSON.stringify({ file, error: { code: err.code, message: err.message } }) + '\n');
    }
    console.error(`${i + 1}/${images.length} ${name}`);
  }
} finally {
  model.dispose();
}
