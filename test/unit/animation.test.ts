// encodeAnimatedPng: the APNG structure a browser needs (acTL/fcTL/fdAT chunks, CRCs, sequence numbers, delays),
// every frame's pixels recoverable by inflating its data, and the first frame readable by a plain PNG decoder.
import * as zlib from 'node:zlib';

import test from 'ava';

import { decodeImage, encodeAnimatedPng, ShowO2Error, type RgbImage } from 'showo2';

function frame(width: number, height: number, seed: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + seed * 97) & 0xff;
  return { width, height, data };
}

interface Chunk {
  type: string;
  data: Buffer;
}

function crc32(bytes: Buffer): number {
  let crc = 0xffffffff;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? 0xedb88320 ^ (crc >>> 1) : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function chunks(file: Uint8Array): Chunk[] {
  const buf = Buffer.from(file);
  if (!buf.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) throw new Error('signature');
  const out: Chunk[] = [];
  for (let o = 8; o < buf.length; ) {
    const length = buf.readUInt32BE(o);
    const type = buf.toString('latin1', o + 4, o + 8);
    const data = buf.subarray(o + 8, o + 8 + length);
    if (crc32(buf.subarray(o + 4, o + 8 + length)) !== buf.readUInt32BE(o + 8 + length)) throw new Error(`bad CRC in ${type}`);
    out.push({ type, data });
    o += 12 + length;
  }
  return out;
}

/** The RGB bytes of filter-0 scanlines. */
function unfilter(raw: Buffer, width: number, height: number): Uint8Array {
  const stride = width * 3;
  const out = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    if (raw[y * (stride + 1)] !== 0) throw new Error('unexpected filter type');
    out.set(raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)), y * stride);
  }
  return out;
}

test('an animated PNG holds every frame, in order, with valid chunks and delays', async (t) => {
  const frames = [frame(7, 5, 1), frame(7, 5, 2), frame(7, 5, 3)];
  const file = await encodeAnimatedPng(frames, { fps: 8, loops: 2 });
  const cs = chunks(file);
  t.deepEqual(
    cs.map((c) => c.type),
    ['IHDR', 'acTL', 'fcTL', 'IDAT', 'fcTL', 'fdAT', 'fcTL', 'fdAT', 'IEND'],
  );
  const actl = cs[1]!.data;
  t.is(actl.readUInt32BE(0), 3);
  t.is(actl.readUInt32BE(4), 2);
  const sequences: number[] = [];
  const decoded: Uint8Array[] = [];
  for (const c of cs) {
    if (c.type === 'fcTL') {
      sequences.push(c.data.readUInt32BE(0));
      t.is(c.data.readUInt32BE(4), 7);
      t.is(c.data.readUInt32BE(8), 5);
      t.is(c.data.readUInt16BE(20) / c.data.readUInt16BE(22), 1 / 8);
    } else if (c.type === 'IDAT') {
      decoded.push(unfilter(zlib.inflateSync(c.data), 7, 5));
    } else if (c.type === 'fdAT') {
      sequences.push(c.data.readUInt32BE(0));
      decoded.push(unfilter(zlib.inflateSync(c.data.subarray(4)), 7, 5));
    }
  }
  t.deepEqual(sequences, [0, 1, 2, 3, 4]);
  t.deepEqual(decoded, frames.map((f) => f.data));
  // A viewer without APNG support sees the first frame.
  t.deepEqual(decodeImage(file), frames[0]);
});

test('a fractional frame rate becomes a millisecond delay', async (t) => {
  const file = await encodeAnimatedPng([frame(2, 2, 0), frame(2, 2, 1)], { fps: 7.5 });
  const fctl = chunks(file).find((c) => c.type === 'fcTL')!.data;
  t.is(fctl.readUInt16BE(20), 133);
  t.is(fctl.readUInt16BE(22), 1000);
});

test('bad frames and options are typed errors', async (t) => {
  await t.throwsAsync(encodeAnimatedPng([]), { instanceOf: ShowO2Error, code: 'ERR_INVALID_ARGUMENT', message: /frames/ });
  await t.throwsAsync(encodeAnimatedPng([frame(2, 2, 0), frame(3, 2, 0)]), {
    code: 'ERR_INVALID_ARGUMENT',
    message: 'Expected a 2x2 RGB image like frames[0] for frames[1] but received "3x2" (string)',
  });
  await t.throwsAsync(encodeAnimatedPng([frame(2, 2, 0)], { fps: 0 }), { code: 'ERR_INVALID_ARGUMENT', message: /options\.fps/ });
  await t.throwsAsync(encodeAnimatedPng([frame(2, 2, 0)], { loops: -1 }), { code: 'ERR_INVALID_ARGUMENT', message: /options\.loops/ });
});

// Found while writing docs/RELIABILITY.md: a missing first frame (null, undefined, or a hole in the array) was a
// TypeError from destructuring frames[0], not a typed error.
test('a missing or malformed frame is a typed error naming its index', async (t) => {
  const good = frame(2, 2, 0);
  const cases: [unknown[], string][] = [
    [[null], 'Expected an RgbImage for frames[0] but received null'],
    [[undefined, good], 'Expected an RgbImage for frames[0] but received undefined'],
    [[good, , good], 'Expected an RgbImage for frames[1] but received undefined'],
    [[good, 'frame.png'], 'Expected an RgbImage for frames[1] but received "frame.png" (string)'],
    [[{ ...good, data: new Uint8Array(11) }], 'Expected 12 bytes (width * height * 3) for frames[0].data but received "11 bytes" (string)'],
    [[good, { ...good, data: new Uint8Array(13) }], 'Expected 12 bytes (width * height * 3) for frames[1].data but received "13 bytes" (string)'],
  ];
  for (const [frames, message] of cases) {
    await t.throwsAsync(encodeAnimatedPng(frames as RgbImage[]), { instanceOf: ShowO2Error, code: 'ERR_INVALID_ARGUMENT', message });
  }
  t.true((await encodeAnimatedPng([good, good])).length > 0);
});

test('a misspelt option is ERR_INVALID_ARGUMENT naming it, not a silent default', async (t) => {
  const frame: RgbImage = { width: 1, height: 1, data: new Uint8Array(3) };
  const err = await t.throwsAsync(encodeAnimatedPng([frame], { fps: 8, loop: 1 } as never), { instanceOf: ShowO2Error });
  t.is(err?.code, 'ERR_INVALID_ARGUMENT');
  t.is(err?.message, 'Expected one of fps, loops for a key of options but received "loop" (string)');
});
