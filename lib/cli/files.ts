/**
 * `showo2 convert` (a checkpoint to one safetensors file) and `showo2 inspect` (a checkpoint's tensors).
 *
 * @module
 * @internal
 */
import { convertToSafetensors } from '../convert.js';
import type { FloatDType } from '../dtype.js';
import { WeightFile } from '../weights.js';
import { choiceValue, printJson, type Command } from './common.js';

export const convert: Command = {
  summary: 'Convert a checkpoint (.bin, .pth, .safetensors, *.index.json) into one safetensors file',
  usage: 'convert <src> <dst> [--dtype f32|bf16|f16]',
  positionals: ['src', 'dst'],
  options: {
    dtype: { type: 'string', value: 'f32|bf16|f16', description: 'Cast the float tensors to this dtype. Defaults to keeping each dtype.' },
  },
  details: 'A safetensors model directory loads faster than a pickle (pytorch_model.bin): its tensors are memory-mapped as they are.',
  async run(ctx, [src, dst], values) {
    const raw = values.dtype;
    const dtype = choiceValue({ dtype: typeof raw === 'string' ? raw.toLowerCase() : raw }, 'dtype', ['f32', 'bf16', 'f16'] as const)
      ?.toUpperCase() as FloatDType | undefined;
    const task = ctx.progress.start(`converting ${src}`);
    const written = await convertToSafetensors(src!, dst!, dtype ? { dtype } : {});
    task.done();
    if (ctx.json) printJson(ctx.io, { command: 'convert', src, dst, tensors: written, ...(dtype ? { dtype } : {}) });
    else ctx.io.out(`wrote ${written} tensors to ${dst}`);
  },
};

export const inspect: Command = {
  summary: "List a checkpoint's format, metadata and tensors",
  usage: 'inspect <weights> [--json]',
  positionals: ['weights'],
  options: {},
  async run(ctx, [file]) {
    const weights = await WeightFile.open(file!);
    try {
      if (ctx.json) {
        const { path, format, metadata, tensors } = weights;
        printJson(ctx.io, { path, format, metadata, tensors });
        return;
      }
      ctx.io.out(`${weights.path}: ${weights.format}, ${weights.tensors.length} tensors`);
      for (const [key, value] of Object.entries(weights.metadata)) ctx.io.out(`metadata ${key}: ${value}`);
      const width = Math.max(0, ...weights.tensors.map((t) => t.name.length));
      for (const t of weights.tensors) ctx.io.out(`${t.name.padEnd(width)}  ${t.dtype.padEnd(4)}  [${t.shape.join(', ')}]`);
    } finally {
      weights.dispose();
    }
  },
};
