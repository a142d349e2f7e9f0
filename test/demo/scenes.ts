// The demo model's evaluator (issue 10): a pixel-level detector that knows the rendering rules of
// tools/demo/scenes.py (flat palette colours, four shapes, five positions) and nothing about any model, plus the
// scoring of generated images, answers and VAE reconstructions. Pure TypeScript (no torch), so CI runs it on the
// SDK's outputs: test/unit/demo-model.test.ts (a small version) and test/demo/evaluate.ts (the full evaluation).
import * as fs from 'node:fs';
import * as path from 'node:path';

import type { RgbImage } from 'showo2';

/** An RGB triple. */
export type Rgb = readonly [number, number, number];

/** One generation case of eval.json: a caption and what it asks for. */
export interface GenerationCase {
  caption: string;
  shape: string;
  colour: string;
  background: string;
  /** The position the caption names, or null when it names none. */
  position: string | null;
}

/** One question about an understanding image. */
export interface QuestionCase {
  kind: string;
  question: string;
  answer: string;
}

/** One held-out understanding image of eval.json. */
export interface UnderstandingCase {
  /** Relative to the eval set's directory. */
  image: string;
  questions: QuestionCase[];
}

/** test/fixtures/demo/eval.json, written by `python3 tools/demo/scenes.py eval-set test/fixtures/demo`. */
export interface EvalSet {
  resolution: number;
  object_colours: Record<string, Rgb>;
  background_colours: Record<string, Rgb>;
  shapes: string[];
  held_out_triples: [string, string, string][];
  generation: GenerationCase[];
  understanding: UnderstandingCase[];
  /** The directory eval.json was read from. */
  dir: string;
}

/** Reads an eval.json (default: the committed one under test/fixtures/demo). */
export function loadEvalSet(dir: string): EvalSet {
  const data = JSON.parse(fs.readFileSync(path.join(dir, 'eval.json'), 'utf8')) as Omit<EvalSet, 'dir'>;
  return { ...data, dir };
}

/** What the detector sees in an image. */
export interface Detection {
  /** The nearest background palette colour to the median border pixel. */
  background: string;
  /** The main object's colour: the palette colour most of the clearly coloured pixels are nearest to; null if none. */
  colour: string | null;
  /** The main object's shape, or null when there is no object. */
  shape: string | null;
  /** The position whose centre is nearest the main object's centroid, or null. */
  position: string | null;
  /** Soft area of the main object over its bounding box area. */
  fill: number;
  /** Vertical centroid of the main object within its bounding box, 0 = top, 1 = bottom. */
  centroidY: number;
  /** Soft area of the main object in pixels. */
  area: number;
}

/** Object centres of tools/demo/scenes.py, as fractions of the side (64 px: 16, 32, 48). */
const POSITION_CENTRES: Record<string, [number, number]> = {
  centre: [0.5, 0.5],
  left: [0.25, 0.5],
  right: [0.75, 0.5],
  top: [0.5, 0.25],
  bottom: [0.5, 0.75],
};

/**
 * Shape prototypes in (fill ratio, vertical centroid) from the rendering rules: a square fills its box; a circle
 * pi/4 of it; the apex-up triangle half, with its centroid 2/3 down; the 5-point star with inner radius 0.45 about
 * 0.38, its centroid 0.55 down (the tips lie on the circle, so the box is 0.95 x 0.905 of the side).
 */
const SHAPE_PROTOTYPES: Record<string, [number, number]> = {
  square: [1.0, 0.5],
  circle: [Math.PI / 4, 0.5],
  triangle: [0.5, 2 / 3],
  star: [0.384, 0.553],
};

function dist2(data: Uint8Array, i: number, c: Rgb): number {
  const dr = data[i]! - c[0];
  const dg = data[i + 1]! - c[1];
  const db = data[i + 2]! - c[2];
  return dr * dr + dg * dg + db * db;
}

function nearest(data: Uint8Array, i: number, palette: Record<string, Rgb>): [string, number] {
  let best = '';
  let bestD = Infinity;
  for (const [name, c] of Object.entries(palette)) {
    const d = dist2(data, i, c);
    if (d < bestD) {
      best = name;
      bestD = d;
    }
  }
  return [best, bestD];
}

/** A pixel counts towards the colour vote only when it is this close (Euclidean RGB) to an object colour. */
const CORE_DISTANCE = 48;

/**
 * Finds the main object of a scene image: background from the border, colour by a vote of the clearly coloured
 * pixels, then the largest 4-connected region closer to that colour than to the background, whose soft area
 * (each pixel's position between the two colours) over its bounding box, and vertical centroid, pick the nearest
 * shape prototype.
 */
export function detect(image: RgbImage, set: Pick<EvalSet, 'object_colours' | 'background_colours'>): Detection {
  const { width: w, height: h, data } = image;
  // background: per-channel median of the border pixels
  const border: number[][] = [[], [], []];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (x !== 0 && y !== 0 && x !== w - 1 && y !== h - 1) continue;
      const i = (y * w + x) * 3;
      for (let c = 0; c < 3; c++) border[c]!.push(data[i + c]!);
    }
  }
  const median = (v: number[]): number => v.sort((a, b) => a - b)[v.length >> 1]!;
  const bg: Rgb = [median(border[0]!), median(border[1]!), median(border[2]!)];
  const bgPixel = Uint8Array.from(bg);
  const [background] = nearest(bgPixel, 0, set.background_colours);

  // colour vote over clearly coloured, clearly non-background pixels
  const votes = new Map<string, number>();
  for (let i = 0; i < w * h * 3; i += 3) {
    if (dist2(data, i, bg) < 60 * 60) continue;
    const [name, d] = nearest(data, i, set.object_colours);
    if (d > CORE_DISTANCE * CORE_DISTANCE) continue;
    votes.set(name, (votes.get(name) ?? 0) + 1);
  }
  let colour: string | null = null;
  let most = 0;
  for (const [name, n] of votes) {
    if (n > most) {
      colour = name;
      most = n;
    }
  }
  if (colour === null || most < 4) {
    return { background, colour: null, shape: null, position: null, fill: 0, centroidY: 0, area: 0 };
  }
  const main = set.object_colours[colour]!;

  // alpha: where each pixel lies between the background (0) and the object colour (1)
  const axis = [main[0] - bg[0], main[1] - bg[1], main[2] - bg[2]];
  const axis2 = axis[0]! ** 2 + axis[1]! ** 2 + axis[2]! ** 2 || 1;
  const alpha = new Float32Array(w * h);
  const inside = new Uint8Array(w * h);
  for (let p = 0; p < w * h; p++) {
    const i = p * 3;
    const a = ((data[i]! - bg[0]) * axis[0]! + (data[i + 1]! - bg[1]) * axis[1]! + (data[i + 2]! - bg[2]) * axis[2]!) / axis2;
    alpha[p] = Math.min(1, Math.max(0, a));
    inside[p] = dist2(data, i, main) < dist2(data, i, bg) ? 1 : 0;
  }
  // the largest 4-connected region of `inside`
  const label = new Int32Array(w * h).fill(-1);
  let bestLabel = -1;
  let bestSize = 0;
  const stack: number[] = [];
  for (let p = 0, next = 0; p < w * h; p++) {
    if (!inside[p] || label[p] !== -1) continue;
    let size = 0;
    label[p] = next;
    stack.push(p);
    while (stack.length) {
      const q = stack.pop()!;
      size++;
      const x = q % w;
      const y = (q / w) | 0;
      const around = [x > 0 ? q - 1 : -1, x < w - 1 ? q + 1 : -1, y > 0 ? q - w : -1, y < h - 1 ? q + w : -1];
      for (const r of around) {
        if (r >= 0 && inside[r] && label[r] === -1) {
          label[r] = next;
          stack.push(r);
        }
      }
    }
    if (size > bestSize) {
      bestSize = size;
      bestLabel = next;
    }
    next++;
  }
  let x0 = w;
  let x1 = -1;
  let y0 = h;
  let y1 = -1;
  for (let p = 0; p < w * h; p++) {
    if (label[p] !== bestLabel) continue;
    const x = p % w;
    const y = (p / w) | 0;
    x0 = Math.min(x0, x);
    x1 = Math.max(x1, x);
    y0 = Math.min(y0, y);
    y1 = Math.max(y1, y);
  }
  // soft area and centroid over the bounding box grown by one pixel (the anti-aliased rim)
  let area = 0;
  let sy = 0;
  let sx = 0;
  for (let y = Math.max(0, y0 - 1); y <= Math.min(h - 1, y1 + 1); y++) {
    for (let x = Math.max(0, x0 - 1); x <= Math.min(w - 1, x1 + 1); x++) {
      const p = y * w + x;
      if (label[p] !== bestLabel && !(alpha[p]! > 0 && !inside[p])) continue;
      area += alpha[p]!;
      sy += alpha[p]! * (y + 0.5);
      sx += alpha[p]! * (x + 0.5);
    }
  }
  const boxW = x1 - x0 + 1;
  const boxH = y1 - y0 + 1;
  const fill = area / (boxW * boxH);
  const centroidY = (sy / area - y0) / boxH;
  let shape = '';
  let bestD = Infinity;
  for (const [name, [f, cy]] of Object.entries(SHAPE_PROTOTYPES)) {
    const d = (fill - f) ** 2 + (2 * (centroidY - cy)) ** 2;
    if (d < bestD) {
      bestD = d;
      shape = name;
    }
  }
  const cx = sx / area / w;
  const cy = sy / area / h;
  let position = '';
  bestD = Infinity;
  for (const [name, [px, py]] of Object.entries(POSITION_CENTRES)) {
    const d = (cx - px) ** 2 + (cy - py) ** 2;
    if (d < bestD) {
      bestD = d;
      position = name;
    }
  }
  return { background, colour, shape, position, fill, centroidY, area };
}

/** How answers are compared (as tools/demo/scenes.py normalise_answer): lower case, trimmed, no final full stop. */
export function normaliseAnswer(text: string): string {
  return text.trim().toLowerCase().replace(/\.+$/, '').trim();
}

/** PSNR in dB between two 8-bit images of the same size. */
export function psnr(a: RgbImage, b: RgbImage): number {
  if (a.width !== b.width || a.height !== b.height) throw new Error('psnr: the images differ in size');
  let sum = 0;
  for (let i = 0; i < a.data.length; i++) sum += (a.data[i]! - b.data[i]!) ** 2;
  const mse = sum / a.data.length;
  return mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse);
}

/** Scores of one generated image against its case. */
export interface GenerationScore {
  caption: string;
  seed: number;
  detected: Detection;
  colourRight: boolean;
  shapeRight: boolean;
  backgroundRight: boolean;
  /** null when the caption names no position. */
  positionRight: boolean | null;
}

/** Scores a generated image against what its caption asked for. */
export function scoreGeneration(
  image: RgbImage,
  item: GenerationCase,
  seed: number,
  set: Pick<EvalSet, 'object_colours' | 'background_colours'>,
): GenerationScore {
  const detected = detect(image, set);
  return {
    caption: item.caption,
    seed,
    detected,
    colourRight: detected.colour === item.colour,
    shapeRight: detected.shape === item.shape,
    backgroundRight: detected.background === item.background,
    positionRight: item.position === null ? null : detected.position === item.position,
  };
}

/** The fraction of `items` for which `pick` is true (items where it is null are left out). */
export function rate<T>(items: readonly T[], pick: (item: T) => boolean | null): number {
  const counted = items.map(pick).filter((v): v is boolean => v !== null);
  return counted.length === 0 ? NaN : counted.filter(Boolean).length / counted.length;
}
