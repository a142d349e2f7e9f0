/**
 * Model resolution: a local model directory, or a Hugging Face Hub repo id whose files are downloaded into the cache
 * that Python's huggingface_hub uses, so a model fetched by either is reused by the other.
 *
 * A published Show-o2 model needs files from three repos (spec §9): its own (config.json and the checkpoint), the
 * tokenizer of its base LLM (config.json's `llm_model_path`, e.g. `Qwen/Qwen2.5-1.5B-Instruct`), and the VAE
 * (`Wan-AI/Wan2.1-T2V-14B/Wan2.1_VAE.pth`).
 *
 * The cache layout is Python's (`huggingface_hub/file_download.py`):
 * ```text
 * <cacheDir>/models--showlab--show-o2-1.5B/
 *   blobs/<etag>                      the bytes; etag = sha256 for LFS files, the git blob sha1 otherwise
 *   blobs/<etag>.incomplete           a partial download (resumed with an HTTP Range request)
 *   refs/main                         the commit `main` pointed to when last resolved
 *   snapshots/<commit>/config.json -> ../../blobs/<etag>
 * <cacheDir>/.locks/models--showlab--show-o2-1.5B/<etag>.showo2.lock
 *                                     held while a Node process downloads that blob (lib/file-lock.ts): another
 *                                     process waits for it, then finds the blob in place. Python's own lock is a
 *                                     flock() on <etag>.lock, which Node cannot take, so a Python download and a Node
 *                                     download of the same file at the same moment are not serialised.
 * ```
 *
 * What comes from `@huggingface/hub`: the cache location (`getHFHubCachePath`, which reads HF_HUB_CACHE, HF_HOME and
 * XDG_CACHE_HOME as Python does), the repo folder name (`getRepoFolderName`) and the checkpoint listing
 * (`pathsInfo`). What is written here, and why: its `downloadFileToCacheDir` names the snapshot folder after the
 * commit that last touched each file rather than the commit the revision points to, writes no `refs/<revision>`
 * (so Python and offline lookups would not find the files), restarts interrupted downloads from zero, checks no
 * size or hash, and reports no progress; its `fileDownloadInfo` follows the Hub's redirect to the CDN and so loses
 * the `X-Repo-Commit` / `X-Linked-Etag` headers that Python reads from the redirect itself. The metadata request
 * and the transfer below follow Python's `get_hf_file_metadata` and `http_get` instead.
 *
 * @module
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { createReadStream, promises as fs, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { getHFHubCachePath, getRepoFolderName, HubApiError, pathsInfo } from '@huggingface/hub';

import { checkOptionKeys, createError, invalidParameterError, ShowO2Error } from './errors.js';
import { withFileLock } from './file-lock.js';
import { isDefined, isNonEmptyString, isPlainObject, isString } from './validate.js';

/** The repo holding the Wan2.1 VAE that every Show-o2 model uses (spec §9). */
export const VAE_REPO = 'Wan-AI/Wan2.1-T2V-14B';
/** The VAE checkpoint's file name in {@link VAE_REPO}. */
export const VAE_FILE = 'Wan2.1_VAE.pth';

/** Checkpoint names in order of preference: the same order `ShowO2Model.load` looks for them in a directory. */
const CHECKPOINT_FILES = [
  'model.safetensors.index.json',
  'model.safetensors',
  'pytorch_model.bin.index.json',
  'pytorch_model.bin',
];
const DEFAULT_ENDPOINT = 'https://huggingface.co';
const COMMIT_HASH = /^[0-9a-f]{40}$/;
/** Transfer attempts per file: a dropped connection resumes from the partial file (Python retries too). */
const MAX_ATTEMPTS = 4;
/** Progress events are coalesced to one per this many bytes (or per `PROGRESS_INTERVAL_MS`), plus the last. */
const PROGRESS_BYTES = 4 << 20;
const PROGRESS_INTERVAL_MS = 100;

/** Where a model's files are, ready for `ShowO2Model.load`. */
export interface ResolvedModel {
  /** The directory with config.json and the checkpoint: a cache snapshot directory, or the local directory given. */
  modelDir: string;
  /** The Wan2.1 VAE checkpoint (`Wan2.1_VAE.pth`). */
  vaePath: string;
  /**
   * A directory holding `tokenizer.json` (and `tokenizer_config.json`): the base LLM repo's snapshot when resolved from
   * the Hub, or the local model directory when it has one. Undefined otherwise (the bundled Qwen2.5 tokenizer fits).
   */
  tokenizerPath?: string;
  /** The commit of the model repo that was resolved, for a Hub repo; undefined for a local directory. */
  commit?: string;
}

/** Download progress of one file. */
export interface DownloadProgress {
  /** The file's path inside its repo (`pytorch_model.bin`). */
  file: string;
  /** The repo it comes from (`showlab/show-o2-1.5B`). */
  repo: string;
  /** Bytes on disk so far, counting the part a resumed download already had. */
  loadedBytes: number;
  /** The file's size, when the Hub announced it. */
  totalBytes?: number;
}

/**
 * How {@link resolveModel} finds and downloads files. Every option has an environment-variable default, the same one
 * Python's huggingface_hub reads.
 *
 * @example
 * ```ts
 * const options: ResolveOptions = { revision: 'main', onProgress: (p) => console.log(p.file, p.loadedBytes) };
 * ```
 */
export interface ResolveOptions {
  /**
   * The Hugging Face cache directory (Python's layout). Defaults to `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else
   * `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`.
   */
  cacheDir?: string;
  /**
   * Use only the cache, never the network; a file that is not cached rejects with `ERR_OFFLINE` naming it. Defaults to
   * `true` when `HF_HUB_OFFLINE` is `1` (or `true`, `yes`, `on`), else `false`.
   */
  offline?: boolean;
  /**
   * A Hugging Face access token (`hf_...`) for private or gated repos. Defaults to `$HF_TOKEN`, else the token that
   * `huggingface-cli login` saved (`$HF_TOKEN_PATH`, else `$HF_HOME/token`), else none.
   */
  token?: string;
  /** The Hub's URL (a mirror, or a local server in tests). Defaults to `$HF_ENDPOINT`, else `https://huggingface.co`.
   */
  endpoint?: string;
  /**
   * The branch, tag or commit of the model repo (the tokenizer and VAE repos always use `main`). Defaults to `'main'`.
   */
  revision?: string;
  /** The VAE checkpoint to use instead of finding or downloading one (returned as is). Defaults to none. */
  vaePath?: string;
  /** The tokenizer (file or directory) to use instead of downloading one (returned as is). Defaults to none. */
  tokenizerPath?: string;
  /**
   * Called as each file downloads (not for files already cached). An exception it throws ends the download and
   * `resolveModel` rejects with that exception (the partial file is kept to resume). Defaults to none.
   */
  onProgress?: (progress: DownloadProgress) => void;
  /** Aborts the resolution: rejects with `ERR_CANCELLED`, keeping partial files to resume later. Defaults to none. */
  signal?: AbortSignal;
  /** The `fetch` to use for every request (a proxy, or a test double). Defaults to the global `fetch`. */
  fetch?: typeof fetch;
}

const OPTION_KEYS = [
  'cacheDir',
  'offline',
  'token',
  'endpoint',
  'revision',
  'vaePath',
  'tokenizerPath',
  'onProgress',
  'signal',
  'fetch',
];

/** The options with every default applied. */
interface Settings {
  cacheDir: string;
  offline: boolean;
  token: string | undefined;
  endpoint: string;
  revision: string;
  onProgress: ((progress: DownloadProgress) => void) | undefined;
  signal: AbortSignal | undefined;
  fetch: typeof fetch;
}

/**
 * Finds a Show-o2 model: a local directory, or a Hugging Face repo id whose files are downloaded (or found in the
 * cache) as the module description explains.
 *
 * - A directory is returned as is, with no network access; its VAE is `options.vaePath`, else the first of
 *   `Wan2.1_VAE.pth`, `Wan2.1_VAE.safetensors` and `vae.safetensors` there or in its `vae/` folder; its tokenizer is
 *   `options.tokenizerPath`, else its own `tokenizer.json` if it has one.
 * - A repo id (`showlab/show-o2-1.5B`) resolves config.json, the checkpoint (`pytorch_model.bin`, a safetensors file,
 *   or a sharded index and its shards), `tokenizer.json` and `tokenizer_config.json` of config.json's
 *   `llm_model_path`, and the VAE. Files already in the cache are not downloaded again; interrupted downloads resume.
 *
 * Rejects with a {@link ShowO2Error}: a {@link ModelNotFoundError} (`ERR_MODEL_NOT_FOUND`) for a missing directory
 * (a source that cannot be a repo id), a directory without a VAE, or a repo, revision or file the Hub does not have;
 * a {@link DownloadError} for network failures and files whose size or hash does not match (`ERR_DOWNLOAD`), refused
 * access (`ERR_UNAUTHORIZED`: set `HF_TOKEN`) or a file that is not cached while offline (`ERR_OFFLINE`); a
 * {@link CancelledError} (`ERR_CANCELLED`) when `signal` aborts; an {@link UnsupportedModelError}
 * (`ERR_UNSUPPORTED_MODEL`) for a repo whose config.json describes another model, before its checkpoint is
 * downloaded; an {@link InvalidInputError} for bad options.
 *
 * @param source - a model directory, or a Hub repo id such as `'showlab/show-o2-1.5B'`.
 * @param options - see {@link ResolveOptions}.
 *
 * @example
 * ```ts
 * import { resolveModel, ShowO2Model } from 'showo2';
 *
 * const { modelDir, vaePath, tokenizerPath } = await resolveModel('showlab/show-o2-1.5B', {
 *   onProgress: ({ file, loadedBytes, totalBytes }) => console.log(file, loadedBytes, '/', totalBytes),
 * });
 * const model = await ShowO2Model.load(modelDir, { vaePath, tokenizerPath });
 * ```
 */
export async function resolveModel(source: string, options: ResolveOptions = {}): Promise<ResolvedModel> {
  if (!isNonEmptyString(source)) {
    throw invalidParameterError('source', 'a model directory or a Hugging Face repo id', source);
  }
  const settings = await resolveSettings(options);
  throwIfAborted(settings.signal);

  const stat = await fs.stat(source).catch(() => undefined);
  if (stat?.isDirectory()) return resolveLocal(source, options);
  if (stat) {
    throw createError(
      'ERR_INVALID_ARGUMENT',
      `Expected a model directory or a Hugging Face repo id for source but ${source} is a file`,
    );
  }
  // A path that cannot be a repo id is a directory that is missing (the same error ShowO2Model.load gives).
  if (!isRepoId(source)) throw createError('ERR_MODEL_NOT_FOUND', `The model directory ${source} does not exist`);
  try {
    return await resolveHub(source, options, settings);
  } catch (err) {
    if (err instanceof ProgressCallbackError) throw err.original;
    throw err;
  }
}

/**
 * The VAE file names a model directory is searched for, in order, first in the directory itself and then in its
 * `vae/` folder: the published PyTorch file, then safetensors files with the same tensor names (the VAE's
 * architecture comes from config.json's `vae_config`, so a small VAE such as the bundled demo model's fits too).
 * @internal
 */
export const VAE_FILE_NAMES: readonly string[] = Object.freeze([VAE_FILE, 'Wan2.1_VAE.safetensors', 'vae.safetensors']);

/**
 * The VAE of a local model directory (the first of {@link VAE_FILE_NAMES} there, then in its `vae/` folder).
 * Rejects with `ERR_FILE_NOT_FOUND` when there is none.
 * @internal
 */
export async function findLocalVae(dir: string): Promise<string> {
  for (const folder of [dir, path.join(dir, 'vae')]) {
    for (const name of VAE_FILE_NAMES) {
      const file = path.join(folder, name);
      if (await isFile(file)) return file;
    }
  }
  // No silent 500 MB download for a directory: the caller names the VAE, or resolves the repo id instead.
  throw createError(
    'ERR_MODEL_NOT_FOUND',
    `No VAE found for the model directory ${dir}: expected one of ${VAE_FILE_NAMES.join(', ')} there or in its vae/ ` +
      `folder, or pass options.vaePath (the published Show-o2 repos do not include it; it is ${VAE_REPO}/${VAE_FILE})`,
  );
}

async function resolveLocal(dir: string, options: ResolveOptions): Promise<ResolvedModel> {
  const vaePath = options.vaePath ?? (await findLocalVae(dir));
  let tokenizerPath = options.tokenizerPath;
  if (!isDefined(tokenizerPath) && (await isFile(path.join(dir, 'tokenizer.json')))) tokenizerPath = dir;
  return { modelDir: dir, vaePath, ...(isDefined(tokenizerPath) ? { tokenizerPath } : {}) };
}

async function resolveHub(repo: string, options: ResolveOptions, settings: Settings): Promise<ResolvedModel> {
  const configRef = { repo, revision: settings.revision, file: 'config.json' };
  const config = await resolveFile(configRef, settings);
  // Before the checkpoint: gigabytes of another model would only fail to load.
  checkShowO2Config(await fs.readFile(config.path, 'utf8'), describeRef(configRef));
  // Every other file of the model repo comes from the commit config.json came from (Python's snapshot_download does
  // the same), so a push to `main` halfway through cannot mix two versions.
  const pinned = { repo, revision: config.commit };
  const modelDir = path.dirname(config.path);

  const checkpoint = await findCheckpoint(pinned, settings);
  const checkpointPath = (await resolveFile({ ...pinned, file: checkpoint }, settings)).path;
  if (checkpoint.endsWith('.index.json')) {
    for (const shard of await readShardNames(checkpointPath, repo)) {
      await resolveFile({ ...pinned, file: shard }, settings);
    }
  }

  let tokenizerPath = options.tokenizerPath;
  if (!isDefined(tokenizerPath)) {
    const llm = await readLlmRepo(config.path);
    if (isDefined(llm)) {
      const tokenizer = await resolveFile({ repo: llm, revision: 'main', file: 'tokenizer.json' }, settings);
      try {
        await resolveFile({ repo: llm, revision: 'main', file: 'tokenizer_config.json' }, settings);
      } catch (err) {
        // tokenizer_config.json only refines tokenizer.json (ShowO2Tokenizer reads it when present).
        if (!(err instanceof ShowO2Error && (err.code === 'ERR_MODEL_NOT_FOUND' || err.code === 'ERR_OFFLINE'))) throw err;
      }
      tokenizerPath = path.dirname(tokenizer.path);
    }
  }

  const vaePath = options.vaePath ?? (await resolveFile({ repo: VAE_REPO, revision: 'main', file: VAE_FILE }, settings)).path;
  return { modelDir, vaePath, ...(isDefined(tokenizerPath) ? { tokenizerPath } : {}), commit: config.commit };
}

// ---- Options ----

async function resolveSettings(options: ResolveOptions): Promise<Settings> {
  if (!isPlainObject(options as unknown)) throw invalidParameterError('options', 'an object', options);
  checkOptionKeys(options, OPTION_KEYS);
  for (const key of ['cacheDir', 'token', 'endpoint', 'revision', 'vaePath', 'tokenizerPath'] as const) {
    if (isDefined(options[key]) && !isNonEmptyString(options[key])) {
      throw invalidParameterError(`options.${key}`, 'a non-empty string', options[key]);
    }
  }
  if (isDefined(options.offline) && typeof options.offline !== 'boolean') {
    throw invalidParameterError('options.offline', 'a boolean', options.offline);
  }
  for (const key of ['onProgress', 'fetch'] as const) {
    if (isDefined(options[key]) && typeof options[key] !== 'function') {
      throw invalidParameterError(`options.${key}`, 'a function', options[key]);
    }
  }
  if (isDefined(options.signal) && !(options.signal instanceof AbortSignal)) {
    throw invalidParameterError('options.signal', 'an AbortSignal', options.signal);
  }
  if (isDefined(options.revision) && (options.revision.startsWith('/') || options.revision.split('/').includes('..'))) {
    throw invalidParameterError('options.revision', 'a branch, tag or commit', options.revision);
  }
  const env = process.env;
  const endpoint = (options.endpoint ?? (isNonEmptyString(env.HF_ENDPOINT) ? env.HF_ENDPOINT : DEFAULT_ENDPOINT)).replace(
    /\/+$/,
    '',
  );
  let protocol: string | undefined;
  try {
    protocol = new URL(endpoint).protocol;
  } catch {
    protocol = undefined;
  }
  if (protocol !== 'http:' && protocol !== 'https:') {
    throw invalidParameterError(options.endpoint ? 'options.endpoint' : 'HF_ENDPOINT', 'an http(s) URL', endpoint);
  }
  return {
    cacheDir: path.resolve(options.cacheDir ?? getHFHubCachePath()),
    offline: options.offline ?? isTrue(env.HF_HUB_OFFLINE),
    token: options.token ?? (await defaultToken()),
    endpoint,
    revision: options.revision ?? 'main',
    onProgress: guardProgress(options.onProgress),
    signal: options.signal,
    fetch: options.fetch ?? globalThis.fetch,
  };
}

/**
 * An exception thrown by the caller's `onProgress`. It ends the download at once and `resolveModel` rejects with the
 * original exception: it is not a network failure to retry, and (from a lock wait's poll) never an unhandled rejection.
 */
class ProgressCallbackError extends Error {
  constructor(readonly original: unknown) {
    super('onProgress threw');
  }
}

function guardProgress(onProgress: ((progress: DownloadProgress) => void) | undefined): Settings['onProgress'] {
  if (!onProgress) return undefined;
  return (progress) => {
    try {
      onProgress(progress);
    } catch (err) {
      throw new ProgressCallbackError(err);
    }
  };
}

/** Python's `_is_true` for environment flags. */
function isTrue(value: string | undefined): boolean {
  return isDefined(value) && ['1', 'on', 'yes', 'true'].includes(value.trim().toLowerCase());
}

/** `$HF_TOKEN`, else the file `huggingface-cli login` writes (Python's `get_token`). */
async function defaultToken(): Promise<string | undefined> {
  const env = process.env;
  if (isNonEmptyString(env.HF_TOKEN?.trim())) return env.HF_TOKEN!.trim();
  const hfHome = env.HF_HOME ?? path.join(env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'huggingface');
  const file = env.HF_TOKEN_PATH ?? path.join(hfHome, 'token');
  const token = (await fs.readFile(file, 'utf8').catch(() => '')).trim();
  return token.length > 0 ? token : undefined;
}

/** huggingface_hub's repo-id rule, restricted to `org/name` (a bare name is taken for a missing directory). */
function isRepoId(value: string): boolean {
  return (
    value.length <= 96 &&
    /^[\w.-]+\/[\w.-]+$/.test(value) &&
    !value.includes('--') &&
    !value.includes('..') &&
    !/^[.-]|[.-]$/.test(value)
  );
}

// ---- One file of one repo ----

interface FileRef {
  /** `org/name`. */
  repo: string;
  /** A branch, tag or commit hash. */
  revision: string;
  /** The file's path inside the repo. */
  file: string;
}

interface ResolvedFile {
  /** The snapshot path (`snapshots/<commit>/<file>`, a symlink to the blob). */
  path: string;
  commit: string;
}

function repoFolder(settings: Settings, repo: string): string {
  return path.join(settings.cacheDir, getRepoFolderName({ name: repo, type: 'model' }));
}

/**
 * Resolves one file to its snapshot path: from the cache when offline, else after asking the Hub for the file's
 * commit and etag (downloading the blob if the cache lacks it). A network failure falls back to the cache, as
 * Python's `hf_hub_download` does.
 */
async function resolveFile(ref: FileRef, settings: Settings): Promise<ResolvedFile> {
  if (settings.offline) {
    const cached = await findCached(ref, settings);
    if (cached) return cached;
    throw offlineError(ref, settings);
  }
  let metadata: FileMetadata;
  try {
    metadata = await fetchMetadata(ref, settings);
  } catch (err) {
    if (err instanceof ShowO2Error || settings.signal?.aborted) throw asShowO2Error(err, ref, settings);
    const cached = await findCached(ref, settings);
    if (cached) return cached;
    throw createError(
      'ERR_DOWNLOAD',
      `Cannot reach ${settings.endpoint} for ${describeRef(ref)} (${errorText(err)}): check the network connection or ` +
        'HF_ENDPOINT (once the files are cached, HF_HUB_OFFLINE=1 skips the network)',
      { cause: err },
    );
  }

  const storage = repoFolder(settings, ref.repo);
  if (ref.revision !== metadata.commit) await writeRef(storage, ref.revision, metadata.commit);
  const pointer = path.join(storage, 'snapshots', metadata.commit, ...ref.file.split('/'));
  const blob = path.join(storage, 'blobs', metadata.etag);
  // A snapshot file never changes (its commit fixes it), so one that exists is the one wanted; Python checks the same.
  if (await isFile(pointer)) return { path: pointer, commit: metadata.commit };
  if (!(await isFile(blob))) {
    // Two resolutions in this process that need the same blob share one download (one writer per partial file).
    // Two processes (two services, or a service and `showo2 pull`) take turns through a lock file; the second finds
    // the blob in place when its turn comes.
    let download = downloadsInFlight.get(blob);
    if (!download) {
      const lock = path.join(settings.cacheDir, '.locks', path.basename(storage), `${metadata.etag}.showo2.lock`);
      download = withFileLock(lock, { signal: settings.signal, onWait: () => reportPartial(`${blob}.incomplete`, metadata, ref, settings) }, async () => {
        if (!(await isFile(blob))) await downloadBlob(metadata, blob, ref, settings);
      })
        .catch((err: unknown) => {
          if (settings.signal?.aborted) throw cancelledError(ref, settings.signal);
          throw err;
        })
        .finally(() => downloadsInFlight.delete(blob));
      downloadsInFlight.set(blob, download);
    }
    await download;
  }
  await linkPointer(blob, pointer);
  return { path: pointer, commit: metadata.commit };
}

const downloadsInFlight = new Map<string, Promise<void>>();

/** While another process downloads a blob, progress is the size of its partial file. */
function reportPartial(partial: string, metadata: FileMetadata, ref: FileRef, settings: Settings): void {
  if (!settings.onProgress) return;
  // Synchronous (one stat per poll), so an exception from onProgress ends the wait instead of floating away.
  let loadedBytes: number;
  try {
    loadedBytes = statSync(partial).size;
  } catch {
    return;
  }
  const total = isDefined(metadata.size) ? { totalBytes: metadata.size } : {};
  settings.onProgress({ file: ref.file, repo: ref.repo, loadedBytes, ...total });
}

/** The cached snapshot path of a file, by `refs/<revision>` (or the commit itself), if the cache has it. */
async function findCached(ref: FileRef, settings: Settings): Promise<ResolvedFile | undefined> {
  const commit = await cachedCommit(ref.repo, ref.revision, settings);
  if (!isDefined(commit)) return undefined;
  const pointer = path.join(repoFolder(settings, ref.repo), 'snapshots', commit, ...ref.file.split('/'));
  return (await isFile(pointer)) ? { path: pointer, commit } : undefined;
}

async function cachedCommit(repo: string, revision: string, settings: Settings): Promise<string | undefined> {
  if (COMMIT_HASH.test(revision)) return revision;
  const refFile = path.join(repoFolder(settings, repo), 'refs', ...revision.split('/'));
  const text = await fs.readFile(refFile, 'utf8').catch(() => undefined);
  const commit = text?.trim();
  return commit && COMMIT_HASH.test(commit) ? commit : undefined;
}

/** Python writes the bare hash, no newline. */
async function writeRef(storage: string, revision: string, commit: string): Promise<void> {
  const file = path.join(storage, 'refs', ...revision.split('/'));
  const current = await fs.readFile(file, 'utf8').catch(() => undefined);
  if (current?.trim() === commit) return;
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, commit);
}

/**
 * `snapshots/<commit>/<file>` -> the blob, by a relative symlink as Python makes it (a copy where links fail). The
 * link is made under a temporary name and renamed into place, so concurrent resolutions (here, or a Python process)
 * never see a missing or half-made pointer.
 */
async function linkPointer(blob: string, pointer: string): Promise<void> {
  await fs.mkdir(path.dirname(pointer), { recursive: true });
  const temporary = `${pointer}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await fs.symlink(path.relative(path.dirname(pointer), blob), temporary);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EINVAL') throw err;
    await fs.copyFile(blob, temporary);
  }
  try {
    await fs.rename(temporary, pointer);
  } catch (err) {
    await fs.rm(temporary, { force: true });
    throw err;
  }
}

// ---- Metadata: Python's get_hf_file_metadata ----

interface FileMetadata {
  /** The commit the revision points to (`X-Repo-Commit`). */
  commit: string;
  /** The blob name: `X-Linked-Etag` (sha256 of an LFS file) or `ETag` (git blob sha1 of a regular file). */
  etag: string;
  /** `X-Linked-Size` or `Content-Length`. */
  size: number | undefined;
  /** Where the bytes are: the CDN URL the Hub redirects to, or the resolve URL itself. */
  url: string;
}

function resolveUrl(endpoint: string, ref: FileRef): string {
  const file = ref.file.split('/').map(encodeURIComponent).join('/');
  return `${endpoint}/${ref.repo}/resolve/${encodeURIComponent(ref.revision)}/${file}`;
}

/**
 * A HEAD request on the resolve URL that does not follow the redirect to the CDN: the Hub sends the commit, the
 * LFS sha256 and size on the redirect response itself. Relative redirects (a renamed repo) are followed.
 */
async function fetchMetadata(ref: FileRef, settings: Settings): Promise<FileMetadata> {
  let url = resolveUrl(settings.endpoint, ref);
  for (let hops = 0; ; hops++) {
    const response = await settings.fetch(url, {
      method: 'HEAD',
      headers: requestHeaders(url, settings),
      redirect: 'manual',
      ...(settings.signal ? { signal: settings.signal } : {}),
    });
    const location = response.headers.get('location');
    const isRedirect = response.status >= 300 && response.status < 400 && isDefined(location);
    if (isRedirect && !/^[a-z][a-z0-9+.-]*:/i.test(location) && !location.startsWith('//') && hops < 10) {
      url = new URL(location, url).href;
      continue;
    }
    if (!isRedirect && !response.ok) throw httpError(response, ref, settings);
    const commit = response.headers.get('x-repo-commit') ?? '';
    const etag = normalizeEtag(response.headers.get('x-linked-etag') ?? response.headers.get('etag') ?? '');
    const sizeHeader =
      response.headers.get('x-linked-size') ?? (isRedirect ? null : response.headers.get('content-length'));
    const size = sizeHeader !== null && /^\d+$/.test(sizeHeader) ? Number(sizeHeader) : undefined;
    // The etag names a file in blobs/: nothing that could leave that folder ('.', '..', separators).
    if (!COMMIT_HASH.test(commit) || !/^[\w-][\w.-]*$/.test(etag)) {
      throw createError(
        'ERR_DOWNLOAD',
        `${url} answered without the Hub's X-Repo-Commit and ETag headers: is ${settings.endpoint} (HF_ENDPOINT) a ` +
          'Hugging Face Hub or a mirror of one?',
      );
    }
    return { commit, etag, size, url: isRedirect ? new URL(location, url).href : url };
  }
}

/** Python's `_normalize_etag`: a weak `W/` prefix and the quotes go. */
function normalizeEtag(etag: string): string {
  return etag.replace(/^W\//, '').replace(/^"|"$/g, '');
}

/**
 * Identity encoding keeps Content-Length the file's size (as Python asks). The token goes only to the Hub's own
 * origin, never to the CDN a download redirects to (its URL is signed).
 */
function requestHeaders(url: string, settings: Settings, extra: Record<string, string> = {}): Record<string, string> {
  const headers: Record<string, string> = { 'Accept-Encoding': 'identity', ...extra };
  if (settings.token && new URL(url).origin === new URL(settings.endpoint).origin) {
    headers.Authorization = `Bearer ${settings.token}`;
  }
  return headers;
}

// ---- Transfer: resumable, size- and hash-checked ----

/** What a blob's etag says about its content: sha256 for LFS files, the git blob sha1 for regular files. */
function hashKind(etag: string): 'sha256' | 'git-sha1' | undefined {
  if (/^[0-9a-f]{64}$/.test(etag)) return 'sha256';
  if (/^[0-9a-f]{40}$/.test(etag)) return 'git-sha1';
  return undefined;
}

function newHash(kind: 'sha256' | 'git-sha1', size: number): Hash {
  if (kind === 'sha256') return createHash('sha256');
  return createHash('sha1').update(`blob ${size}\0`);
}

/**
 * Downloads a blob into `<blob>.incomplete` (Python's name, so either side resumes the other's partial file), hashing
 * as it goes, and renames it into place once size and hash match. Dropped connections and 5xx answers are retried,
 * each retry resuming from the bytes already on disk.
 */
async function downloadBlob(metadata: FileMetadata, blob: string, ref: FileRef, settings: Settings): Promise<void> {
  await fs.mkdir(path.dirname(blob), { recursive: true });
  const partial = `${blob}.incomplete`;
  const kind = hashKind(metadata.etag);
  const size = metadata.size;
  let lastError: unknown;
  let restartedAfterMismatch = false;
  for (let attempt = 1; ; attempt++) {
    throwIfAborted(settings.signal);
    try {
      const hash = await transfer(metadata, partial, ref, settings, kind);
      const written = (await fs.stat(partial)).size;
      if (isDefined(size) && written < size) {
        // The body ended early without an error (no Content-Length to catch it): resume.
        const message = `${describeRef(ref)}: the connection closed after ${written} of ${size} bytes`;
        throw retryable(createError('ERR_DOWNLOAD', message));
      }
      if (isDefined(size) && written > size) {
        await fs.rm(partial, { force: true });
        throw createError(
          'ERR_DOWNLOAD',
          `${describeRef(ref)}: received ${written} bytes but the Hub announced ${size}; the download was deleted, try again`,
        );
      }
      const digest = hash?.digest('hex');
      if (isDefined(digest) && digest !== metadata.etag) {
        await fs.rm(partial, { force: true });
        // A partial file left by an older run may have been the bad part: one fresh download settles it.
        if (!restartedAfterMismatch && hash!.resumed) {
          restartedAfterMismatch = true;
          continue;
        }
        throw createError(
          'ERR_DOWNLOAD',
          `${describeRef(ref)} is corrupt: its ${kind === 'sha256' ? 'sha256' : 'git sha1'} is ${digest} but the Hub ` +
            `announced ${metadata.etag}; the download was deleted, try again`,
        );
      }
      await fs.rename(partial, blob);
      return;
    } catch (err) {
      if (err instanceof ProgressCallbackError) throw err;
      if (settings.signal?.aborted) throw cancelledError(ref, settings.signal);
      if (err instanceof ShowO2Error && !(err as RetryableError).retryable) throw err;
      lastError = err;
      if (attempt >= MAX_ATTEMPTS) break;
      await sleep(200 * attempt, settings.signal).catch(() => undefined);
    }
  }
  throw createError(
    'ERR_DOWNLOAD',
    `Downloading ${describeRef(ref)} failed ${MAX_ATTEMPTS} times (last: ${errorText(lastError)}); the partial file is ` +
      'kept and the next attempt resumes it',
    { cause: lastError },
  );
}

type RetryableError = ShowO2Error & { retryable?: boolean };
type ResumableHash = Hash & { resumed?: boolean };

/**
 * One GET of the bytes not yet on disk. Returns the hash of the whole file (what was on disk plus what arrived), or
 * undefined when the etag says nothing about the content.
 */
async function transfer(
  metadata: FileMetadata,
  partial: string,
  ref: FileRef,
  settings: Settings,
  kind: 'sha256' | 'git-sha1' | undefined,
): Promise<ResumableHash | undefined> {
  const size = metadata.size;
  let offset = (await fs.stat(partial).catch(() => undefined))?.size ?? 0;
  if (isDefined(size) && offset > size) offset = 0;
  const canHash = isDefined(kind) && (kind === 'sha256' || isDefined(size));

  let response: Response | undefined;
  if (!isDefined(size) || offset < size) {
    const range = offset > 0 ? { Range: `bytes=${offset}-` } : undefined;
    response = await settings.fetch(metadata.url, {
      headers: requestHeaders(metadata.url, settings, range),
      redirect: 'follow',
      ...(settings.signal ? { signal: settings.signal } : {}),
    });
    if (!response.ok) {
      await response.body?.cancel().catch(() => undefined);
      if (response.status === 416 && offset > 0) {
        // The partial file does not fit the file on the server any more: start over.
        await fs.rm(partial, { force: true });
        throw retryable(createError('ERR_DOWNLOAD', `${describeRef(ref)}: the server rejected the resume range`));
      }
      throw httpError(response, ref, settings);
    }
    // A server that ignores the range sends the whole file: take it from the start.
    if (offset > 0 && (response.status !== 206 || !contentRangeStartsAt(response, offset))) offset = 0;
  }

  const hash: ResumableHash | undefined = canHash ? newHash(kind!, size ?? 0) : undefined;
  if (hash && offset > 0) {
    hash.resumed = true;
    for await (const chunk of createReadStream(partial, { end: offset - 1 })) hash.update(chunk as Buffer);
  }
  if (!response) return hash;

  const handle = await fs.open(partial, offset > 0 ? 'r+' : 'w');
  let loaded = offset;
  let reported = -1;
  let reportedAt = 0;
  const report = (final: boolean) => {
    if (!settings.onProgress) return;
    const now = Date.now();
    if (!final && loaded - reported < PROGRESS_BYTES && now - reportedAt < PROGRESS_INTERVAL_MS) return;
    if (loaded === reported) return;
    reported = loaded;
    reportedAt = now;
    const total = isDefined(size) ? { totalBytes: size } : {};
    settings.onProgress({ file: ref.file, repo: ref.repo, loadedBytes: loaded, ...total });
  };
  try {
    await handle.truncate(offset);
    report(true);
    if (response.body) {
      for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
        await handle.write(chunk, 0, chunk.byteLength, loaded);
        hash?.update(chunk);
        loaded += chunk.byteLength;
        report(false);
      }
    }
    report(true);
  } finally {
    await handle.close();
  }
  return hash;
}

function contentRangeStartsAt(response: Response, offset: number): boolean {
  const match = /^bytes (\d+)-/.exec(response.headers.get('content-range') ?? '');
  return match !== null && Number(match[1]) === offset;
}

// ---- Checkpoint discovery ----

/**
 * The checkpoint a model repo has, by the order of {@link CHECKPOINT_FILES}: one `paths-info` call when the Hub
 * answers it, else one request per candidate, else (offline, or the network is down) whatever the cached snapshot has.
 */
async function findCheckpoint(ref: Omit<FileRef, 'file'>, settings: Settings): Promise<string> {
  const noCheckpoint = (where: string) =>
    createError(
      'ERR_MODEL_NOT_FOUND',
      `${ref.repo} (revision ${ref.revision}) has no checkpoint ${where}: expected one of ` +
        `${CHECKPOINT_FILES.join(', ')}; is it a Show-o2 model repo?`,
    );
  const fromCache = async (): Promise<string | undefined> => {
    for (const file of CHECKPOINT_FILES) if (await findCached({ ...ref, file }, settings)) return file;
    return undefined;
  };
  if (settings.offline) {
    const cached = await fromCache();
    if (cached) return cached;
    throw offlineError({ ...ref, file: 'pytorch_model.bin' }, settings);
  }
  try {
    const entries = await pathsInfo({
      repo: { type: 'model', name: ref.repo },
      paths: CHECKPOINT_FILES,
      revision: ref.revision,
      hubUrl: settings.endpoint,
      fetch: authorizedFetch(settings),
    });
    const present = new Set(entries.filter((e) => e.type === 'file').map((e) => e.path));
    const found = CHECKPOINT_FILES.find((f) => present.has(f));
    if (found) return found;
    throw noCheckpoint('on the Hub');
  } catch (err) {
    if (err instanceof ShowO2Error) throw err;
    if (settings.signal?.aborted) throw cancelledError({ ...ref, file: 'the file list' }, settings.signal);
    if (err instanceof HubApiError && (err.statusCode === 401 || err.statusCode === 403)) {
      throw unauthorizedError(ref.repo, err.statusCode, err.message, settings, err);
    }
    if (!(err instanceof HubApiError)) {
      // The network is down: the cached snapshot decides (config.json came from it too).
      const cached = await fromCache();
      if (cached) return cached;
      const message = `Cannot list the files of ${ref.repo} on ${settings.endpoint}: ${errorText(err)}`;
      throw createError('ERR_DOWNLOAD', message, { cause: err });
    }
  }
  // An endpoint without the paths-info API (some mirrors): ask for each candidate.
  for (const file of CHECKPOINT_FILES) {
    try {
      await fetchMetadata({ ...ref, file }, settings);
      return file;
    } catch (err) {
      if (!(err instanceof ShowO2Error && err.code === 'ERR_MODEL_NOT_FOUND')) {
        throw asShowO2Error(err, { ...ref, file }, settings);
      }
    }
  }
  throw noCheckpoint('on the Hub');
}

/** The global (or given) fetch with the token and the abort signal added, for `@huggingface/hub` calls. */
function authorizedFetch(settings: Settings): typeof fetch {
  return (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const headers = { ...Object.fromEntries(new Headers(init?.headers).entries()), ...requestHeaders(url, settings) };
    return settings.fetch(input, { ...init, headers, ...(settings.signal ? { signal: settings.signal } : {}) });
  };
}

async function readShardNames(indexPath: string, repo: string): Promise<string[]> {
  let weightMap: unknown;
  try {
    weightMap = (JSON.parse(await fs.readFile(indexPath, 'utf8')) as { weight_map?: unknown }).weight_map;
  } catch (err) {
    const message = `The checkpoint index ${indexPath} of ${repo} is not valid JSON: ${errorText(err)}`;
    throw createError('ERR_CORRUPT_FILE', message, { cause: err });
  }
  if (!isPlainObject(weightMap)) {
    throw createError('ERR_CORRUPT_FILE', `The checkpoint index ${indexPath} of ${repo} has no weight_map object`);
  }
  const shards = [...new Set(Object.values(weightMap))];
  for (const shard of shards) {
    // A shard name becomes a path under the snapshot: nothing that could climb out of it.
    const safe = isString(shard) && shard.length > 0 && !path.isAbsolute(shard) && !shard.split('/').some((p) => p === '..' || p === '');
    if (!safe) {
      const message = `The checkpoint index ${indexPath} of ${repo} names an invalid shard file ${JSON.stringify(shard)}`;
      throw createError('ERR_CORRUPT_FILE', message);
    }
  }
  return shards as string[];
}

/** The `_class_name` of the released Show-o2 configs (spec §9), the one architecture the native model implements. */
const SHOWO2_CLASS_NAME = 'Showo2Qwen2_5';

/**
 * Rejects a config.json that declares another architecture with ERR_UNSUPPORTED_MODEL (`source` names the file in the
 * message). Without this check the native reader would report the first field that differs from Show-o2's (e.g. a
 * hidden_size that does not fit), which hides the real problem, and a repo id would download its checkpoint first. Show-o2 configs are diffusers-style and name their class in `_class_name`; transformers configs
 * name `model_type` and `architectures` instead. A config that declares none of them is left to the native reader,
 * as is one that does not parse (it reports the syntax error with its position).
 * @internal
 */
export function checkShowO2Config(configJson: string, source: string): void {
  let config: unknown;
  try {
    config = JSON.parse(configJson);
  } catch {
    return;
  }
  if (!isPlainObject(config) || config._class_name === SHOWO2_CLASS_NAME) return;
  const declared = isString(config._class_name)
    ? `_class_name ${JSON.stringify(config._class_name)}`
    : isString(config.model_type)
      ? `model_type ${JSON.stringify(config.model_type)}`
      : Array.isArray(config.architectures)
        ? `architectures ${JSON.stringify(config.architectures)}`
        : undefined;
  if (declared === undefined) return;
  throw createError(
    'ERR_UNSUPPORTED_MODEL',
    `${source} describes another model (${declared}), not Show-o2: showo2 runs Show-o2 checkpoints, whose ` +
      `config.json has _class_name "${SHOWO2_CLASS_NAME}" (e.g. showlab/show-o2-1.5B)`,
  );
}

/** config.json's `llm_model_path` when it names a Hub repo (the tokenizer's home); a local path is not followed. */
async function readLlmRepo(configPath: string): Promise<string | undefined> {
  let config: unknown;
  try {
    config = JSON.parse(await fs.readFile(configPath, 'utf8'));
  } catch (err) {
    throw createError('ERR_CORRUPT_FILE', `${configPath} is not valid JSON: ${errorText(err)}`, { cause: err });
  }
  const llm = isPlainObject(config) ? config.llm_model_path : undefined;
  return isString(llm) && isRepoId(llm) ? llm : undefined;
}

// ---- Errors ----

function describeRef(ref: FileRef): string {
  return `${ref.file} of ${ref.repo}${ref.revision === 'main' ? '' : ` (revision ${ref.revision})`}`;
}

function offlineError(ref: FileRef, settings: Settings): ShowO2Error {
  return createError(
    'ERR_OFFLINE',
    `Offline (HF_HUB_OFFLINE=1 or options.offline) and ${describeRef(ref)} is not in the cache ${settings.cacheDir}: ` +
      'download it once online (showo2 pull), or point HF_HUB_CACHE / HF_HOME at the cache that has it',
  );
}

function cancelledError(ref: FileRef, signal: AbortSignal): ShowO2Error {
  const message = `Resolving ${describeRef(ref)} was aborted (partial downloads are kept and resume)`;
  return createError('ERR_CANCELLED', message, { cause: signal.reason });
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw createError('ERR_CANCELLED', 'The model resolution was aborted', { cause: signal.reason });
}

function unauthorizedError(
  repo: string,
  status: number,
  detail: string,
  settings: Settings,
  cause?: unknown,
): ShowO2Error {
  const fix = settings.token
    ? 'the token (HF_TOKEN or options.token) was refused: check that it is valid and can read this repo'
    : 'set HF_TOKEN to a Hugging Face access token (hf_...) that can read it';
  return createError(
    'ERR_UNAUTHORIZED',
    `The Hub refused access to ${repo} (${status}${detail ? `: ${detail}` : ''}); if the repo is gated, accept its terms at ` +
      `${settings.endpoint}/${repo}, and ${fix}`,
    cause === undefined ? undefined : { cause },
  );
}

function retryable(error: ShowO2Error): ShowO2Error {
  (error as RetryableError).retryable = true;
  return error;
}

/** Maps an HTTP error answer from the Hub to a typed error, by `X-Error-Code` first (the Hub's own classification). */
function httpError(response: Response, ref: FileRef, settings: Settings): ShowO2Error {
  const status = response.status;
  const code = response.headers.get('x-error-code') ?? '';
  const detail = response.headers.get('x-error-message') ?? '';
  if (code === 'RepoNotFound') {
    return createError(
      'ERR_MODEL_NOT_FOUND',
      `The Hugging Face repo ${ref.repo} does not exist, or is private (${status}): check the id` +
        (settings.token ? '' : ', or set HF_TOKEN to a token that can read it'),
    );
  }
  if (code === 'RevisionNotFound') {
    const message = `The Hugging Face repo ${ref.repo} has no revision ${ref.revision} (${status})`;
    return createError('ERR_MODEL_NOT_FOUND', message);
  }
  if (code === 'EntryNotFound' || status === 404) {
    return createError(
      'ERR_MODEL_NOT_FOUND',
      `The Hugging Face repo ${ref.repo}${ref.revision === 'main' ? '' : ` (revision ${ref.revision})`} has no file ` +
        `${ref.file} (${status})`,
    );
  }
  if (code === 'GatedRepo' || status === 401 || status === 403) return unauthorizedError(ref.repo, status, detail, settings);
  const message = `The Hub answered ${status} ${response.statusText} for ${describeRef(ref)}${detail ? `: ${detail}` : ''}`;
  const error = createError('ERR_DOWNLOAD', message);
  return status >= 500 || status === 429 || status === 408 ? retryable(error) : error;
}

function asShowO2Error(err: unknown, ref: FileRef, settings: Settings): ShowO2Error {
  if (settings.signal?.aborted) return cancelledError(ref, settings.signal);
  if (err instanceof ShowO2Error) return err;
  return createError('ERR_DOWNLOAD', `Resolving ${describeRef(ref)} failed: ${errorText(err)}`, { cause: err });
}

/** An error's message plus its cause's (undici reports `fetch failed` with the reason in `cause`). */
function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? err.cause.message : undefined;
  return cause && cause !== err.message ? `${err.message}: ${cause}` : err.message;
}

// ---- Small helpers ----

async function isFile(file: string): Promise<boolean> {
  return (await fs.stat(file).catch(() => undefined))?.isFile() ?? false;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}
