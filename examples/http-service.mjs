// A small HTTP service around one Show-o2 model: text-to-image and image question answering.
//
//   node examples/http-service.mjs [model-dir-or-repo-id] [--vae Wan2.1_VAE.pth] [--port 8080]
//
// Without a model it serves the bundled demo model (simple coloured shapes), e.g.:
//
//   curl -s -X POST localhost:8080/generate -d '{"prompt":"a red circle on a blue background","seed":0}' -o circle.png
//   curl -s -X POST localhost:8080/ask -H 'content-type: image/png' --data-binary @fox.png \
//        -G --data-urlencode 'question=What animal is this?'
//
// Requests run one model step at a time on the model's queue, so concurrent requests interleave instead of
// blocking each other, and the event loop stays free; a client that disconnects aborts its request.
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import { DEMO_MODEL, encodePng, InvalidInputError, ShowO2Model } from 'showo2';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { vae: { type: 'string' }, port: { type: 'string', default: '8080' } },
});
if (positionals.length > 1) {
  console.error('usage: node examples/http-service.mjs [model-dir-or-repo-id] [--vae PATH] [--port N]');
  process.exit(2);
}
const model = await ShowO2Model.load(positionals[0] ?? DEMO_MODEL, values.vae ? { vaePath: values.vae } : {});

async function readBody(req, limit = 32 << 20) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) throw new InvalidInputError('ERR_INVALID_ARGUMENT', `request body over ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function fail(res, err) {
  const status = err instanceof InvalidInputError ? 400 : 500; // the request's fault, or ours
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: { code: err.code ?? 'ERR_INTERNAL', message: err.message } }));
}

createServer(async (req, res) => {
  const abort = new AbortController();
  res.on('close', () => abort.abort()); // the client went away: stop the model work
  const url = new URL(req.url, 'http://localhost');
  try {
    if (req.method === 'POST' && url.pathname === '/generate') {
      const { prompt, width, height, steps, guidanceScale, seed } = JSON.parse((await readBody(req)).toString('utf8'));
      const { images, seed: used } = await model.generateImages({
        prompt,
        ...(width ? { width } : {}),
        ...(height ? { height } : {}),
        ...(steps ? { steps } : {}),
        ...(guidanceScale !== undefined ? { guidanceScale } : {}),
        ...(seed !== undefined ? { seed } : {}),
        signal: abort.signal,
      });
      res.writeHead(200, { 'content-type': 'image/png', 'x-showo2-seed': String(used) });
      res.end(encodePng(images[0]));
    } else if (req.method === 'POST' && url.pathname === '/ask') {
      const image = new Uint8Array(await readBody(req));
      const question = url.searchParams.get('question') ?? 'Describe this image.';
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      // Stream the answer as it is generated.
      await model.answer({ image, question, signal: abort.signal, onTextChunk: (text) => res.write(text) });
      res.end('\n');
    } else {
      res.writeHead(404).end();
    }
  } catch (err) {
    if (res.headersSent) res.end();
    else fail(res, err);
  }
}).listen(Number(values.port), () => console.log(`showo2 service on http://localhost:${values.port}`));
