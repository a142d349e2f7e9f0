/**
 * `showo2 pull <repo>`: downloads a published model's three sources (the repo, its base LLM's tokenizer, the Wan VAE)
 * into the Hugging Face cache, as Python's huggingface_hub lays it out, so later loads (and Python) find them.
 *
 * @module
 * @internal
 */
import { resolveModel } from '../hub.js';
import { printJson, UsageError, type Command } from './common.js';
import { formatBytes, type ProgressTask } from './progress.js';

export const pull: Command = {
  summary: 'Download a model from the Hugging Face Hub into the local cache',
  usage: 'pull <repo-id> [--revision REV] [--cache-dir DIR] [--offline]',
  positionals: ['repo-id'],
  cancellable: true,
  options: {
    revision: { type: 'string', value: 'REV', description: "Branch, tag or commit of the model repo. Defaults to 'main'." },
    'cache-dir': {
      type: 'string',
      value: 'DIR',
      description: 'Cache directory. Defaults to $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub.',
    },
    offline: { type: 'boolean', description: 'Only check the cache (no network). Defaults to off (or HF_HUB_OFFLINE=1).' },
  },
  details: [
    'A Show-o2 model needs three sources: the model repo (config.json and its checkpoint), the tokenizer of the base',
    'LLM its config names (e.g. Qwen/Qwen2.5-1.5B-Instruct) and Wan2.1_VAE.pth from Wan-AI/Wan2.1-T2V-14B. Interrupted',
    'downloads resume; every file is checked against the size and hash the Hub reports. HF_TOKEN is used for gated repos.',
    '',
    'Example:',
    '  showo2 pull showlab/show-o2-1.5B',
    '  showo2 ask showlab/show-o2-1.5B --image cat.png --question "What is this?"',
  ].join('\n'),
  async run(ctx, [repo], values) {
    if (!/^[\w.-]+\/[\w.-]+$/.test(repo!) || /^\.{1,2}\//.test(repo!)) throw new UsageError(`expected a Hugging Face repo id like showlab/show-o2-1.5B but got ${repo}`);
    const downloads = new Map<string, ProgressTask>();
    const resolved = await resolveModel(repo!, {
      ...(typeof values.revision === 'string' ? { revision: values.revision } : {}),
      ...(typeof values['cache-dir'] === 'string' ? { cacheDir: values['cache-dir'] } : {}),
      ...(values.offline === true ? { offline: true } : {}),
      signal: ctx.signal,
      onProgress: ({ repo: from, file, loadedBytes, totalBytes }) => {
        const key = `${from}/${file}`;
        let task = downloads.get(key);
        if (!task) downloads.set(key, (task = ctx.progress.start(`downloading ${key}`, formatBytes)));
        task.update(loadedBytes, totalBytes);
        if (totalBytes !== undefined && loadedBytes >= totalBytes) task.done();
      },
    });
    if (ctx.json) {
      printJson(ctx.io, resolved);
      return;
    }
    ctx.io.out(`model:     ${resolved.modelDir}`);
    ctx.io.out(`vae:       ${resolved.vaePath}`);
    if (resolved.tokenizerPath !== undefined) ctx.io.out(`tokenizer: ${resolved.tokenizerPath}`);
  },
};
