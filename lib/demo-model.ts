/**
 * The demo model bundled with the package: a small Show-o2 (same architecture and file layout as the published ones)
 * trained by tools/demo/train.py on procedurally drawn scenes of coloured shapes, so that image generation and
 * questions about images work right after `npm install`, with no download and no GPU. Its model card is
 * models/demo/README.md. For real images and real questions, load a published checkpoint instead
 * (`showlab/show-o2-1.5B`).
 *
 * @module
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { packageRoot } from './native.js';

/**
 * The directory of the bundled demo model, to pass to {@link ShowO2Model.load}. The CLI uses it when no model is
 * named (no `--model` and no `SHOWO2_MODEL`).
 *
 * @example
 * ```ts
 * import { DEMO_MODEL, ShowO2Model } from 'showo2';
 *
 * await using model = await ShowO2Model.load(DEMO_MODEL);
 * const { images } = await model.generateImages({ prompt: 'a red circle on a blue background' });
 * ```
 */
export const DEMO_MODEL: string = path.join(packageRoot, 'models', 'demo');

/** Whether this installation has the demo model (it is part of the published package). @internal */
export function hasDemoModel(): boolean {
  return fs.existsSync(path.join(DEMO_MODEL, 'config.json'));
}
