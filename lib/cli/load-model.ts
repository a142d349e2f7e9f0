/**
 * Finding and loading the model a command names: the model flags, a Hub repo id resolved through lib/hub.ts, and
 * the load itself, with progress.
 *
 * @module
 * @internal
 */
import * as fs from 'node:fs';

import type { ShowO2Error } from '../errors.js';
import { DEMO_MODEL, hasDemoModel } from '../demo-model.js';
import { resolveModel } from '../hub.js';
import { ShowO2Model, type ShowO2LoadOptions } from '../model.js';
import {
  ACTIVATION_DTYPES,
  CONV_DTYPES,
  DEVICES,
  resolveDevice,
  WEIGHT_DTYPES,
  type ActivationDtype,
  type ConvDtype,
  type Device,
  type WeightDtype,
} from '../runtime.js';
import {
  abortable,
  asFlagError,
  choiceValue,
  intValue,
  stringValue,
  UsageError,
  withHint,
  type CommandContext,
  type OptionSpec,
  type OptionValues,
} from './common.js';
import { formatBytes, type ProgressTask } from './progress.js';

/** The flags of every command that loads a model. */
export const LOAD_OPTIONS: Record<string, OptionSpec> = {
  model: {
    type: 'string',
    short: 'm',
    value: 'DIR|REPO',
    description:
      'The model: a directory, or a Hugging Face repo id such as showlab/show-o2-1.5B (downloaded once into the Hugging Face cache). ' +
      'Defaults to $SHOWO2_MODEL, else the bundled demo model (a small model trained on simple shapes).',
  },
  revision: {
    type: 'string',
    value: 'REV',
    description: 'With a Hugging Face repo id as the model: the branch, tag or commit. Defaults to main.',
  },
  vae: {
    type: 'string',
    value: 'PATH',
    description:
      'The Wan2.1 VAE checkpoint (Wan2.1_VAE.pth). Defaults to Wan2.1_VAE.pth (or Wan2.1_VAE.safetensors, vae.safetensors) ' +
      'in the model directory or its vae/ folder; ' +
      'for a repo id, the one from Wan-AI/Wan2.1-T2V-14B (downloaded once into the Hugging Face cache).',
  },
  tokenizer: {
    type: 'string',
    value: 'PATH',
    description:
      "A tokenizer.json or a directory holding one. Defaults to the model's (for a repo id, its base LLM's), else the bundled Qwen2.5 tokenizer.",
  },
  device: {
    type: 'string',
    value: 'cpu|cuda|auto',
    description: 'Where the model runs; auto picks a supported GPU when there is one. Defaults to $SHOWO2_DEVICE, else cpu.',
  },
  threads: { type: 'string', value: 'N', description: 'CPU threads. Defaults to one per available core.' },
  'weight-dtype': {
    type: 'string',
    value: 'bf16|fp16',
    description: 'The dtype of the weight matrices on a GPU (ignored on the CPU). Defaults to bf16.',
  },
  'conv-dtype': {
    type: 'string',
    value: 'fp32|bf16',
    description: "What the VAE's convolutions multiply in on a GPU (bf16: tensor cores). Ignored on the CPU. Defaults to fp32.",
  },
  'activation-dtype': {
    type: 'string',
    value: 'fp32|bf16',
    description: "What the VAE stores its activations in on a GPU (bf16: half the memory). Ignored on the CPU. Defaults to fp32.",
  },
  'channels-last': {
    type: 'boolean',
    description: "Keep the VAE's activations channels-last on a GPU (the layout its conv kernels read fastest). Ignored on the CPU. Defaults to off.",
  },
};

/** The model flags: the load options plus the Hub revision. */
export type ModelOptions = ShowO2LoadOptions & { revision?: string };

/** The model a command loads: `--model`, else `$SHOWO2_MODEL`, else the bundled demo model (`demo: true`). */
export function modelSource(values: OptionValues): { source: string; demo: boolean } {
  const given = stringValue(values, 'model') ?? process.env.SHOWO2_MODEL;
  if (given !== undefined && given !== '') return { source: given, demo: false };
  if (!hasDemoModel()) {
    throw new UsageError(
      `No model given and the bundled demo model is missing (${DEMO_MODEL}): pass --model DIR|REPO (e.g. --model showlab/show-o2-1.5B) or set SHOWO2_MODEL`,
    );
  }
  return { source: DEMO_MODEL, demo: true };
}

/** The notice printed when the demo model is used. */
export const DEMO_NOTICE =
  'using the bundled demo model (a small model trained on simple coloured shapes; see models/demo/README.md). ' +
  'For the published Show-o2, pass --model showlab/show-o2-1.5B or set SHOWO2_MODEL.';

/**
 * The `--revision`, `--vae`, `--tokenizer`, `--device`, `--threads`, `--weight-dtype`, `--conv-dtype`,
 * `--channels-last` and `--activation-dtype` flags as load options.
 */
export function loadOptions(values: OptionValues): ModelOptions {
  const options: ModelOptions = {};
  const revision = stringValue(values, 'revision');
  if (revision !== undefined) options.revision = revision;
  const vae = stringValue(values, 'vae');
  if (vae !== undefined) options.vaePath = vae;
  const tokenizer = stringValue(values, 'tokenizer');
  if (tokenizer !== undefined) options.tokenizerPath = tokenizer;
  const device = choiceValue<Device>(values, 'device', DEVICES);
  if (device !== undefined) options.device = device;
  const threads = intValue(values, 'threads', 1, 4096);
  if (threads !== undefined) options.threads = threads;
  const weightDtype = choiceValue<WeightDtype>(values, 'weight-dtype', WEIGHT_DTYPES);
  if (weightDtype !== undefined) options.weightDtype = weightDtype;
  const convDtype = choiceValue<ConvDtype>(values, 'conv-dtype', CONV_DTYPES);
  if (convDtype !== undefined) options.convDtype = convDtype;
  if (values['channels-last'] === true) options.channelsLast = true;
  const activationDtype = choiceValue<ActivationDtype>(values, 'activation-dtype', ACTIVATION_DTYPES);
  if (activationDtype !== undefined) options.activationDtype = activationDtype;
  return options;
}

/**
 * The hint for a model that did not load; `hub` says whether the source was a Hub repo id. A local directory that is
 * missing or incomplete (ERR_MODEL_NOT_FOUND, or a --vae/--tokenizer file that is missing) gets the directory layout;
 * a repo id that the Hub does not have keeps the code's generic hint (check the id and --revision).
 */
export function modelLoadHint(hub: boolean): (err: ShowO2Error) => string | undefined {
  return (err) => {
    if ((err.code === 'ERR_MODEL_NOT_FOUND' && !hub) || err.code === 'ERR_FILE_NOT_FOUND') {
      return (
        'A model directory holds config.json and pytorch_model.bin or model.safetensors (e.g. a download of ' +
        'showlab/show-o2-1.5B); the VAE is Wan2.1_VAE.pth from Wan-AI/Wan2.1-T2V-14B, passed with --vae PATH.'
      );
    }
    return modelErrorHint(err);
  };
}

function modelErrorHint(err: ShowO2Error): string | undefined {
  if (err.code === 'ERR_DOWNLOAD' || err.code === 'ERR_OFFLINE') {
    return 'Check the network and run the command again (downloads resume), or pass local files with --vae PATH and --tokenizer PATH.';
  }
  if (err.code === 'ERR_INVALID_ARGUMENT' && err.message.includes('tokenizer.json')) {
    return "Pass the model's tokenizer with --tokenizer FILE (its tokenizer.json, or the directory that holds it).";
  }
  if (err.code === 'ERR_INVALID_ARGUMENT') return 'The model directory does not hold a Show-o2 model that showo2 supports.';
  return undefined;
}

/**
 * Whether `source` names a Hub repo rather than a local path: `org/name`, not an existing path and not written as one
 * (absolute, `./`, `../`, `~`). A missing local directory then fails as ERR_MODEL_NOT_FOUND naming the directory,
 * not as a Hub lookup.
 */
function isHubSource(source: string): boolean {
  return /^[\w.-]+\/[\w.-]+$/.test(source) && !/^\.{1,2}\//.test(source) && !fs.existsSync(source);
}

function isDirectory(source: string): boolean {
  try {
    return fs.statSync(source).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Finds the model's files with lib/hub.ts (a Hub repo id is downloaded into the Hugging Face cache, as Python's
 * huggingface_hub lays it out), then loads it, with progress for each download and for the load.
 */
export async function loadModel(ctx: CommandContext, values: OptionValues): Promise<ShowO2Model> {
  const { source, demo } = modelSource(values);
  if (demo && !ctx.quiet) ctx.io.err(DEMO_NOTICE);
  const { revision, ...load } = loadOptions(values);
  const hub = isHubSource(source);
  if (revision !== undefined && !hub) throw new UsageError(`--revision applies to a Hugging Face repo id, and ${source} is not one`);
  // ERR_NO_GPU before the downloads below, as ShowO2Model.load does: gigabytes are no use on a GPU that is not there.
  await resolveDevice(load.device);
  let modelDir = source;
  if (hub || isDirectory(source)) {
    const downloads = new Map<string, ProgressTask>();
    const resolved = await withHint(
      resolveModel(source, {
        ...(revision !== undefined ? { revision } : {}),
        ...(load.vaePath !== undefined ? { vaePath: load.vaePath } : {}),
        ...(load.tokenizerPath !== undefined ? { tokenizerPath: load.tokenizerPath } : {}),
        signal: ctx.signal,
        onProgress: ({ repo, file, loadedBytes, totalBytes }) => {
          const key = `${repo}/${file}`;
          let task = downloads.get(key);
          if (!task) downloads.set(key, (task = ctx.progress.start(`downloading ${key}`, formatBytes)));
          task.update(loadedBytes, totalBytes);
          if (totalBytes !== undefined && loadedBytes >= totalBytes) task.done();
        },
      }).catch((err: unknown) => {
        throw asFlagError(err);
      }),
      modelLoadHint(hub),
    );
    modelDir = resolved.modelDir;
    load.vaePath = resolved.vaePath;
    if (resolved.tokenizerPath !== undefined) load.tokenizerPath = resolved.tokenizerPath;
  }
  const task = ctx.progress.start(`loading ${source}`);
  const loading = ShowO2Model.load(modelDir, load);
  // Loading cannot be stopped part-way; on Ctrl-C the command ends at once and the model is released once loaded.
  const release = () => void loading.then((m) => m.dispose(), () => undefined);
  ctx.signal.addEventListener('abort', release, { once: true });
  let model: ShowO2Model;
  try {
    model = await withHint(abortable(loading, ctx.signal), modelLoadHint(hub));
  } catch (err) {
    throw asFlagError(err);
  } finally {
    if (!ctx.signal.aborted) ctx.signal.removeEventListener('abort', release);
  }
  task.done(`on ${model.device}`);
  return model;
}
