// Upload a file to the canister: chunks of the size its limits allow now
// (`stats().limits.max_chunk_bytes`, which its controllers may lower),
// `inFlight` calls at once, one streaming SHA-256 of the whole file in
// file order, resume by an idempotency key derived from the file and the
// capsule.
//
// `upload` reads like the protocol: plan (the canister's limits, sizes,
// names, key: queries only) → `uploads_begin` (the session, new or
// resumed) → `uploads_status` (what the canister still needs) →
// `uploads_put_chunk` for each missing chunk (the whole file hashed on the
// way) → `uploads_finish` (asked again while the canister's hashing
// catches up; a lost reply of a finish that ran is recovered).

import { newSha256, sha256 } from './sha256.js';
import type {
  backendInterface,
  CommittedUpload,
  Limits,
  OpenUpload,
  Thumbnail,
  UploadStarted,
  UploadStatus,
} from './bindings/backend.js';
import { ChunkTooLarge, type ErrorActions, UploadAborted, type UploadError, UploadFailed, actionFor, hex } from './errors.js';
import { Pool } from './pool.js';
import { makeThumbnail } from './thumbnail.js';
import { AGAIN, DEFAULT_RETRY, type RetryPolicy, withRetry } from './retry.js';

/**
 * The largest chunk any canister of this interface takes (`MAX_CHUNK_BYTES`
 * in `src/limits.rs`: what fits the IC's 2 MiB ingress limit). `upload`
 * does not use it: the chunk size in force is the canister's
 * `stats().limits.max_chunk_bytes`, at most this.
 */
export const MAX_CHUNK_BYTES = 1_900_000;
/**
 * Calls in flight by default. A subnet takes about 4 MiB of ingress per
 * block: 12 chunks of 1.9 MB keep a few blocks' worth queued, so the
 * subnet, not the canister or the client, sets the pace.
 */
export const DEFAULT_IN_FLIGHT = 12;
/** Keys tried for one file when earlier sessions were aborted or expired. */
const KEY_GENERATIONS = 8;
/** Missing ranges asked for per `uploads_status` page (the canister may send fewer). */
const STATUS_PAGE_RANGES = 1000;

export type UploadSource = Blob | Uint8Array;
export type UploadActor = backendInterface;

/** What every call of this client takes beside its own options. */
export interface CallOptions {
  /** Retries of transport failures (defaults: `DEFAULT_RETRY`). */
  retry?: Partial<RetryPolicy>;
  /** Aborting stops the work at the next call. */
  signal?: AbortSignal;
}

export interface UploadProgress {
  totalBytes: number;
  /** Bytes of the chunks sent (in flight or answered) in this run. */
  sentBytes: number;
  /** Bytes the canister holds, chunks found there at resume included. */
  confirmedBytes: number;
  /** Bytes found already on the canister when this run began. */
  resumedBytes: number;
  /** Confirmed bytes per second in this run. */
  bytesPerSecond: number;
  /** At the current rate; undefined until something was confirmed. */
  secondsLeft: number | undefined;
}

export interface UploadOptions extends CallOptions {
  /** Defaults to the `File`'s name, else `"upload"`. */
  name?: string;
  /** Defaults to the `Blob`'s type, else `application/octet-stream`. */
  mimeType?: string;
  /** Calls in flight (default 12). */
  inFlight?: number;
  /**
   * Chunk size. By default the largest the canister takes now,
   * `stats().limits.max_chunk_bytes` (asked once per upload); a larger
   * one is refused with `ChunkTooLarge` before any update call.
   */
  chunkBytes?: number;
  /**
   * Also send each chunk's SHA-256 (default false): a bad chunk is then
   * refused on arrival, but the canister hashes every byte twice.
   */
  chunkHashes?: boolean;
  /** Aborting stops the upload and aborts the session on the canister. */
  signal?: AbortSignal;
  onProgress?: (progress: UploadProgress) => void;
  /** Called once the session is known (new or resumed). */
  onSession?: (session: UploadStarted) => void;
  /** Retries of `uploads_finish` while the canister's hashing catches up. */
  finishRetry?: Partial<RetryPolicy>;
  /**
   * What identifies the file across reloads (default: name, size, type,
   * last modification and the SHA-256 of its first and last chunks).
   */
  fileIdentity?: string;
  /**
   * The idempotency key to begin under, instead of the one derived from
   * the file and the capsule (`uploadKey`). `IndexClient.upload` passes
   * the key of the capsule's first bucket to the next one when a bucket is
   * sealed, so the upload keeps its key wherever it lands.
   */
  idempotencyKey?: string;
  /**
   * A small picture of the file for gallery pages, stored with the memory:
   * `true` makes one in the browser (`makeThumbnail`: an image scaled on a
   * canvas, a video's frame at one second; none for other types or outside
   * a browser), or give one (a JPEG or WebP of at most 32 KiB). Only the
   * first `uploads_begin` of a file sets it: a resumed upload keeps the
   * thumbnail it began with.
   */
  thumbnail?: boolean | Thumbnail;
}

export interface UploadResult extends CommittedUpload {
  sessionId: bigint;
  /** `put_chunk` calls made in this run (retries included). */
  chunkCalls: number;
  /** Chunks that were already on the canister. */
  resumedChunks: number;
}

type Result<T, E> = { __kind__: 'Ok'; Ok: T } | { __kind__: 'Err'; Err: E };

/** The `Ok` value, or the canister's error as an `UploadFailed`. */
export function unwrap<T, E extends UploadError>(method: string, result: Result<T, E>): T {
  if (result.__kind__ === 'Err') throw new UploadFailed(result.Err, method);
  return result.Ok;
}

export function byteLength(file: UploadSource): number {
  return file instanceof Uint8Array ? file.byteLength : file.size;
}

/** Bytes `[start, end)` of the file; a `Blob` is read only there. */
export async function readRange(file: UploadSource, start: number, end: number): Promise<Uint8Array> {
  if (file instanceof Uint8Array) return file.subarray(start, end);
  return new Uint8Array(await file.slice(start, end).arrayBuffer());
}

function chunkCount(total: number, chunkBytes: number): number {
  return Math.ceil(total / chunkBytes);
}

/**
 * The idempotency key of `file` in `capsuleId`: the same file (same name,
 * size, type, modification time and first and last chunks) in the same
 * capsule gets the same key after a reload, so `uploads_begin` returns the
 * same session. 74 ASCII characters (76 with a generation suffix), far
 * below the canister's longest key.
 */
export async function idempotencyKey(
  capsuleId: bigint,
  file: UploadSource,
  name: string,
  mimeType: string,
  chunkBytes: number,
  fileIdentity?: string,
): Promise<string> {
  const total = byteLength(file);
  let identity = fileIdentity;
  if (identity === undefined) {
    const last = Math.max(0, chunkCount(total, chunkBytes) - 1) * chunkBytes;
    const head = await sha256(await readRange(file, 0, Math.min(total, chunkBytes)));
    const tail = await sha256(await readRange(file, last, total));
    const modified = typeof File !== 'undefined' && file instanceof File ? file.lastModified : '';
    identity = [name, total, mimeType, modified, hex(head), hex(tail)].join('\n');
  }
  const digest = await sha256(new TextEncoder().encode(`${capsuleId}\n${chunkBytes}\n${identity}`));
  return `upload-v1-${hex(digest)}`;
}

/** The memory's name `upload` uses: `options.name`, the `File`'s name, else `"upload"`. */
export function uploadName(file: UploadSource, options: Pick<UploadOptions, 'name'> = {}): string {
  return options.name ?? (typeof File !== 'undefined' && file instanceof File ? file.name : 'upload');
}

/** The MIME type `upload` uses: `options.mimeType`, the `Blob`'s type, else `application/octet-stream`. */
export function uploadMimeType(file: UploadSource, options: Pick<UploadOptions, 'mimeType'> = {}): string {
  return options.mimeType || (file instanceof Blob && file.type) || 'application/octet-stream';
}

/**
 * The idempotency key `upload(actor, capsuleId, file, options)` begins
 * under (`options.idempotencyKey` when given): derived from the file, the
 * capsule and the chunk size (`options.chunkBytes`, else the canister's
 * `stats().limits.max_chunk_bytes`, asked here).
 */
export async function uploadKey(
  actor: UploadActor,
  capsuleId: bigint,
  file: UploadSource,
  options: UploadOptions = {},
): Promise<string> {
  if (options.idempotencyKey !== undefined) return options.idempotencyKey;
  const chunkBytes = options.chunkBytes ?? (await defaultChunkBytes(actor, options));
  return idempotencyKey(capsuleId, file, uploadName(file, options), uploadMimeType(file, options), chunkBytes, options.fileIdentity);
}

function aborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

function retryPolicy(retry: Partial<RetryPolicy> | undefined): RetryPolicy {
  return { ...DEFAULT_RETRY, ...retry };
}

/** Every missing chunk of a session, page after page of `uploads_status`. */
export async function sessionStatus(
  actor: UploadActor,
  sessionId: bigint,
  options: CallOptions = {},
): Promise<{ status: UploadStatus; missing: number[] }> {
  const policy = retryPolicy(options.retry);
  const missing: number[] = [];
  let from = 0;
  let first: UploadStatus | undefined;
  for (;;) {
    const page = await withRetry('uploads_status', policy, options.signal, async () =>
      unwrap(
        'uploads_status',
        await actor.uploads_status({ session_id: sessionId, from_chunk: from, max_ranges: STATUS_PAGE_RANGES }),
      ),
    );
    first ??= page;
    for (const range of page.missing) {
      for (let i = range.start; i < range.end; i++) missing.push(i);
    }
    if (page.next_from_chunk === undefined) break;
    from = page.next_from_chunk;
  }
  return { status: first, missing };
}

/** The caller's open uploads: what `upload` can resume. */
export function resumableUploads(actor: UploadActor): Promise<OpenUpload[]> {
  return actor.uploads_mine();
}

/** Aborts a session on the canister (transport failures retried). */
export async function abortUpload(actor: UploadActor, sessionId: bigint, options: CallOptions = {}): Promise<void> {
  await withRetry('uploads_abort', retryPolicy(options.retry), options.signal, async () =>
    unwrap('uploads_abort', await actor.uploads_abort(sessionId)),
  );
}

/**
 * The limits the canister enforces now (`stats().limits`, a query;
 * transport failures retried). `upload` asks once per upload, so a
 * controller's `admin_set_limits` is followed from the next upload on.
 */
export async function uploadLimits(actor: UploadActor, options: CallOptions = {}): Promise<Limits> {
  const { limits } = await withRetry('stats', retryPolicy(options.retry), options.signal, () => actor.stats());
  return limits;
}

/**
 * The chunk size `upload` uses by default: the largest the canister takes
 * now, `stats().limits.max_chunk_bytes`.
 */
export async function defaultChunkBytes(actor: UploadActor, options: CallOptions = {}): Promise<number> {
  return (await uploadLimits(actor, options)).max_chunk_bytes;
}

/** What one `upload` call sends, fixed before any update call. */
interface UploadPlan {
  capsuleId: bigint;
  file: UploadSource;
  total: number;
  chunkBytes: number;
  chunks: number;
  name: string;
  mimeType: string;
  /** The idempotency key of generation 0. */
  key: string;
  policy: RetryPolicy;
  finishPolicy: RetryPolicy;
  signal: AbortSignal | undefined;
  thumbnail: Thumbnail | undefined;
}

/**
 * Plan: the chunk size (the caller's, checked against the canister's
 * limits, or the canister's largest), name, type, thumbnail and idempotency
 * key of the file. Queries only: nothing is sent yet.
 */
async function planUpload(
  actor: UploadActor,
  capsuleId: bigint,
  file: UploadSource,
  options: UploadOptions,
): Promise<UploadPlan> {
  const { signal } = options;
  const policy = retryPolicy(options.retry);
  const finishPolicy = { ...DEFAULT_RETRY, attempts: 60, maxDelayMs: 2_000, ...options.finishRetry };
  if (options.chunkBytes !== undefined && (!Number.isInteger(options.chunkBytes) || options.chunkBytes < 1)) {
    throw new RangeError(`chunkBytes must be a positive integer, not ${options.chunkBytes}`);
  }
  const { max_chunk_bytes: maxChunkBytes } = await uploadLimits(actor, { retry: policy, signal });
  const chunkBytes = options.chunkBytes ?? maxChunkBytes;
  if (chunkBytes > maxChunkBytes) throw new ChunkTooLarge(chunkBytes, maxChunkBytes);
  const total = byteLength(file);
  const chunks = chunkCount(total, chunkBytes);
  const name = uploadName(file, options);
  const mimeType = uploadMimeType(file, options);
  const key = options.idempotencyKey ?? (await idempotencyKey(capsuleId, file, name, mimeType, chunkBytes, options.fileIdentity));
  const thumbnail =
    options.thumbnail === true
      ? file instanceof Blob
        ? await makeThumbnail(file)
        : undefined
      : options.thumbnail || undefined;
  return { capsuleId, file, total, chunkBytes, chunks, name, mimeType, key, policy, finishPolicy, signal, thumbnail };
}

/**
 * The `uploads_begin` errors `beginSession` handles; the others are
 * thrown as `UploadFailed`.
 */
const BEGIN_ERRORS = {
  // An earlier session of this file was aborted or expired: its key stays
  // taken, so the next generation of the key starts afresh.
  SessionAborted: 'nextKey',
  SessionExpired: 'nextKey',
} as const satisfies ErrorActions<'uploads_begin'>;

/**
 * `uploads_begin`: the session of the plan's key, new or resumed. When an
 * earlier session of the file was aborted or expired, the next generation
 * of the key.
 */
async function beginSession(actor: UploadActor, plan: UploadPlan): Promise<UploadStarted> {
  const { capsuleId, total, chunkBytes, chunks, name, mimeType, policy, signal } = plan;
  for (let generation = 0; ; generation++) {
    const key = generation === 0 ? plan.key : `${plan.key}-${generation}`;
    const result = await withRetry('uploads_begin', policy, signal, () =>
      actor.uploads_begin({
        capsule_id: capsuleId,
        asset: { sha256: undefined, name, byte_len: BigInt(total), mime_type: mimeType },
        chunk_size: chunkBytes,
        expected_chunks: chunks,
        idempotency_key: key,
        thumbnail: plan.thumbnail,
      }),
    );
    if (result.__kind__ === 'Ok') return result.Ok;
    const action = actionFor(BEGIN_ERRORS, result.Err);
    if (action !== 'nextKey' || generation + 1 >= KEY_GENERATIONS) throw new UploadFailed(result.Err, 'uploads_begin');
  }
}

/** What the canister holds of a session when this run begins. */
type ResumeState =
  /** The same file was uploaded before: that memory is the answer. */
  | { committed: CommittedUpload }
  /** `toSend[i]` is 1 for each chunk the canister still needs. */
  | { committed: undefined; toSend: Uint8Array };

/** `uploads_status`: the chunks still missing, or the committed memory. */
async function missingChunks(actor: UploadActor, plan: UploadPlan, sessionId: bigint): Promise<ResumeState> {
  const { status, missing } = await sessionStatus(actor, sessionId, { retry: plan.policy, signal: plan.signal });
  if (status.committed) return { committed: status.committed };
  const toSend = new Uint8Array(plan.chunks);
  for (const i of missing) toSend[i] = 1;
  return { committed: undefined, toSend };
}

/**
 * The accounting of one run, kept in one place: the progress the caller
 * sees (reported after each change) and the counts `upload` returns.
 */
class RunAccount {
  readonly #progress: UploadProgress;
  readonly #started = performance.now();
  readonly #onProgress: ((progress: UploadProgress) => void) | undefined;
  /** `uploads_put_chunk` calls made, retries included. */
  chunkCalls = 0;
  /** Chunks found on the canister already. */
  resumedChunks = 0;

  constructor(totalBytes: number, onProgress: ((progress: UploadProgress) => void) | undefined) {
    this.#progress = {
      totalBytes,
      sentBytes: 0,
      confirmedBytes: 0,
      resumedBytes: 0,
      bytesPerSecond: 0,
      secondsLeft: undefined,
    };
    this.#onProgress = onProgress;
  }

  /** A chunk the canister held when this run began. */
  resumed(bytes: number): void {
    this.resumedChunks++;
    this.#progress.resumedBytes += bytes;
    this.#progress.confirmedBytes += bytes;
    this.#report();
  }

  /** A chunk handed to `uploads_put_chunk`. */
  sent(bytes: number): void {
    this.#progress.sentBytes += bytes;
    this.#report();
  }

  /** A chunk the canister answered for: it holds it. */
  confirmed(bytes: number): void {
    this.#progress.confirmedBytes += bytes;
    this.#report();
  }

  #report(): void {
    const progress = this.#progress;
    const seconds = (performance.now() - this.#started) / 1000;
    const thisRun = progress.confirmedBytes - progress.resumedBytes;
    progress.bytesPerSecond = seconds > 0 ? thisRun / seconds : 0;
    progress.secondsLeft =
      progress.bytesPerSecond > 0 ? (progress.totalBytes - progress.confirmedBytes) / progress.bytesPerSecond : undefined;
    this.#onProgress?.({ ...progress });
  }
}

/**
 * The file's chunks in order, one read ahead: the disk works while the
 * caller hashes this one.
 */
async function* chunksInOrder(plan: UploadPlan): AsyncGenerator<{ index: number; bytes: Uint8Array }> {
  const { file, total, chunkBytes, chunks } = plan;
  const read = (i: number) => readRange(file, i * chunkBytes, Math.min(total, (i + 1) * chunkBytes));
  let ahead = chunks > 0 ? read(0) : undefined;
  for (let index = 0; index < chunks; index++) {
    const bytes = await ahead!;
    ahead = index + 1 < chunks ? read(index + 1) : undefined;
    // A read left behind by a failure must not become an unhandled rejection.
    ahead?.catch(() => undefined);
    yield { index, bytes };
  }
}

/** `uploads_put_chunk` of one chunk (transport failures retried: the canister keeps a chunk once). */
async function putChunk(
  actor: UploadActor,
  plan: UploadPlan,
  sessionId: bigint,
  index: number,
  bytes: Uint8Array,
  chunkSha: Uint8Array | undefined,
  account: RunAccount,
): Promise<void> {
  await withRetry('uploads_put_chunk', plan.policy, plan.signal, async () => {
    account.chunkCalls++;
    return unwrap(
      'uploads_put_chunk',
      await actor.uploads_put_chunk({ session_id: sessionId, index, bytes, sha256: chunkSha }),
    );
  });
}

/**
 * Reads the whole file in order and hashes all of it, sending the chunks
 * in `toSend` through `pool`; returns the file's SHA-256 once every chunk
 * sent was answered.
 */
async function sendMissingChunks(
  actor: UploadActor,
  plan: UploadPlan,
  sessionId: bigint,
  toSend: Uint8Array,
  pool: Pool,
  account: RunAccount,
  chunkHashes: boolean,
): Promise<Uint8Array> {
  const { signal } = plan;
  const hasher = await newSha256();
  for await (const { index, bytes } of chunksInOrder(plan)) {
    if (aborted(signal)) throw new UploadAborted(sessionId);
    // In file order: the whole-file digest streams with the reading.
    hasher.update(bytes);
    if (toSend[index] === 0) {
      account.resumed(bytes.length);
      continue;
    }
    await pool.slot();
    if (aborted(signal)) throw new UploadAborted(sessionId);
    const chunkSha = chunkHashes ? await sha256(bytes) : undefined;
    account.sent(bytes.length);
    pool.run(async () => {
      await putChunk(actor, plan, sessionId, index, bytes, chunkSha, account);
      account.confirmed(bytes.length);
    });
  }
  await pool.drain();
  return hasher.digest();
}

/**
 * The `uploads_finish` errors `finishWithRetry` handles; the others are
 * thrown as `UploadFailed`.
 */
const FINISH_ERRORS = {
  // Every chunk arrived but the canister's hashing has not caught up.
  VerificationPending: 'askAgain',
  // An earlier finish executed but its reply was lost: the session's
  // status names the memory it committed.
  AlreadyCommitted: 'readCommitted',
} as const satisfies ErrorActions<'uploads_finish'>;

/**
 * `uploads_finish`: the canister verifies the whole file's SHA-256 and
 * commits the memory; asked again while its hashing catches up.
 */
async function finishWithRetry(
  actor: UploadActor,
  plan: UploadPlan,
  sessionId: bigint,
  digest: Uint8Array,
): Promise<CommittedUpload> {
  const { total, policy, finishPolicy, signal } = plan;
  return withRetry('uploads_finish', finishPolicy, signal, async () => {
    const result = await actor.uploads_finish({ session_id: sessionId, sha256: digest, byte_len: BigInt(total) });
    if (result.__kind__ === 'Ok') return result.Ok;
    switch (actionFor(FINISH_ERRORS, result.Err)) {
      case 'askAgain':
        return AGAIN;
      case 'readCommitted': {
        const { status } = await sessionStatus(actor, sessionId, { retry: policy, signal });
        if (status.committed) return status.committed;
        throw new UploadFailed(result.Err, 'uploads_finish');
      }
      default:
        throw new UploadFailed(result.Err, 'uploads_finish');
    }
  });
}

/**
 * Uploads `file` into capsule `capsuleId`, or resumes its upload: chunks
 * the canister already has are hashed locally but not sent again.
 */
export async function upload(
  actor: UploadActor,
  capsuleId: bigint,
  file: UploadSource,
  options: UploadOptions = {},
): Promise<UploadResult> {
  const { signal } = options;
  if (aborted(signal)) throw new UploadAborted(undefined);
  const plan = await planUpload(actor, capsuleId, file, options);
  const session = await beginSession(actor, plan);
  const sessionId = session.session_id;
  options.onSession?.(session);
  const pool = new Pool(options.inFlight ?? DEFAULT_IN_FLIGHT);
  const account = new RunAccount(plan.total, options.onProgress);
  const result = (committed: CommittedUpload, resumedChunks: number): UploadResult => ({
    ...committed,
    sessionId,
    chunkCalls: account.chunkCalls,
    resumedChunks,
  });
  try {
    const resume = await missingChunks(actor, plan, sessionId);
    if (resume.committed) return result(resume.committed, plan.chunks);
    const digest = await sendMissingChunks(
      actor,
      plan,
      sessionId,
      resume.toSend,
      pool,
      account,
      options.chunkHashes === true,
    );
    return result(await finishWithRetry(actor, plan, sessionId, digest), account.resumedChunks);
  } catch (error) {
    // Nothing of this upload may still run once its promise settles.
    await pool.settle();
    if (aborted(signal)) {
      await abortUpload(actor, sessionId, { retry: plan.policy });
      throw new UploadAborted(sessionId);
    }
    throw error;
  }
}
