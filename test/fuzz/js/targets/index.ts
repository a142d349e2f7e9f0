// Every JavaScript fuzz target, in the order run.js runs them.
import type { FuzzTarget } from '../engine.js';
import { imageDecodeTarget } from './image-decode.js';
import { tokenizerTarget } from './tokenizer.js';
import { visualInputTarget } from './visual-input.js';

export const TARGETS: readonly FuzzTarget[] = [imageDecodeTarget, visualInputTarget, tokenizerTarget];
