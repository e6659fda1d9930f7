// Upload a file to the canister: chunks of the canister's largest chunk
// size (`MAX_CHUNK_BYTES`, or the lower `max_chunk_bytes` its controllers
// set), `inFlight` calls at once, one streaming SHA-256 of the whole file
// in file order, resume by an idempotency key derived from the file and
// the capsule.
//
// `upload` runs in phases: plan (sizes, names, key: no update call yet),
// begin (the session, new or resumed), resume status (what the canister
// still needs), send chunks (and hash the whole file), finish (verify and
// commit).

import { newSha256, sha256 } from './sha256.js';
import type {
  backendInterface,
  CommittedUpload,
  OpenUpload,
  Thumbnail,
  UploadError,
  UploadStarted,
  UploadStatus,
} from './bindings/backend.js';
import { UploadAborted, UploadFailed, hex } from './errors.js';
import { Pool } from './pool.js';
import { makeThumbnail } from './thumbnail.js';
import { AGAIN, DEFAULT_RETRY, type RetryPolicy, withRetry } from './retry.js';

/** The canister's largest chunk (`MAX_CHUNK_BYTES` in `src/upload/limits.rs`). */
export const MAX_CHUNK_BYTES = 1_900_000;
/**
 * Calls in flight by default. A subnet takes about 4 MiB of ingress per
 * block: 12 chunks of 1.9 MB keep a few blocks' worth queued, so the
 * subnet, not the canister or the client, sets the pace.
 */
export const DEFAULT_IN_FLIGHT = 12;
/** Longest idempotency key the canister accepts. */
const MAX_KEY_BYTES = 128;
/** Keys tried for one file when earlier sessions were aborted or expired. */
const KEY_GENERATIONS = 8;

export type UploadSource = Blob | Uint8Array;
export type UploadActor = backendInterface;

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

export interface UploadOptions {
  /** Defaults to the `File`'s name, else `"upload"`. */
  name?: string;
  /** Defaults to the `Blob`'s type, else `application/octet-stream`. */
  mimeType?: string;
  /** Calls in flight (default 12). */
  inFlight?: number;
  /**
   * Chunk size, at most `MAX_CHUNK_BYTES`. By default the canister's
   * largest: `min(MAX_CHUNK_BYTES, stats().limits.max_chunk_bytes)`, asked
   * once per upload.
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
  retry?: Partial<RetryPolicy>;
  /** Retries of `uploads_finish` while the canister's hashing catches up. */
  finishRetry?: Partial<RetryPolicy>;
  /**
   * What identifies the file across reloads (default: name, size, type,
   * last modification and the SHA-256 of its first and last chunks).
   */
  fileIdentity?: string;
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

type Ok<T> = { __kind__: 'Ok'; Ok: T } | { __kind__: 'Err'; Err: UploadError };

/** The `Ok` value, or the canister's error as an `UploadFailed`. */
export function unwrap<T>(method: string, result: Ok<T>): T {
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
 * same session.
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
  const key = `upload-v1-${hex(digest)}`;
  return key.slice(0, MAX_KEY_BYTES - 4);
}

function aborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

/** Every missing chunk of a session, page after page of `uploads_status`. */
export async function sessionStatus(
  actor: UploadActor,
  sessionId: bigint,
  options: { retry?: Partial<RetryPolicy>; signal?: AbortSignal } = {},
): Promise<{ status: UploadStatus; missing: number[] }> {
  const policy = { ...DEFAULT_RETRY, ...options.retry };
  const missing: number[] = [];
  let from = 0;
  let first: UploadStatus | undefined;
  for (;;) {
    const page = await withRetry('uploads_status', policy, options.signal, async () =>
      unwrap('uploads_status', await actor.uploads_status({ session_id: sessionId, from_chunk: from, max_ranges: 1000 })),
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
export async function abortUpload(actor: UploadActor, sessionId: bigint, retry?: Partial<RetryPolicy>): Promise<void> {
  await withRetry('uploads_abort', { ...DEFAULT_RETRY, ...retry }, undefined, async () =>
    unwrap('uploads_abort', await actor.uploads_abort(sessionId)),
  );
}

/**
 * The chunk size `upload` uses by default: the largest the canister takes
 * now, `min(MAX_CHUNK_BYTES, stats().limits.max_chunk_bytes)` (a `stats`
 * query, transport failures retried).
 */
export async function defaultChunkBytes(
  actor: UploadActor,
  options: { retry?: Partial<RetryPolicy>; signal?: AbortSignal } = {},
): Promise<number> {
  const { limits } = await withRetry('stats', { ...DEFAULT_RETRY, ...options.retry }, options.signal, () => actor.stats());
  return Math.min(MAX_CHUNK_BYTES, limits.max_chunk_bytes);
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

/** Phase 1, plan: chunk size, name, type and idempotency key of the file. */
async function planUpload(
  actor: UploadActor,
  capsuleId: bigint,
  file: UploadSource,
  options: UploadOptions,
): Promise<UploadPlan> {
  const { signal } = options;
  const policy = { ...DEFAULT_RETRY, ...options.retry };
  const finishPolicy = { ...DEFAULT_RETRY, attempts: 60, maxDelayMs: 2_000, ...options.finishRetry };
  const chunkBytes = options.chunkBytes ?? (await defaultChunkBytes(actor, { retry: policy, signal }));
  if (!Number.isInteger(chunkBytes) || chunkBytes < 1 || chunkBytes > MAX_CHUNK_BYTES) {
    throw new RangeError(`chunkBytes must be in 1..=${MAX_CHUNK_BYTES}`);
  }
  const total = byteLength(file);
  const chunks = chunkCount(total, chunkBytes);
  const name = options.name ?? (typeof File !== 'undefined' && file instanceof File ? file.name : 'upload');
  const mimeType = options.mimeType || (file instanceof Blob && file.type) || 'application/octet-stream';
  const key = await idempotencyKey(capsuleId, file, name, mimeType, chunkBytes, options.fileIdentity);
  const thumbnail =
    options.thumbnail === true
      ? file instanceof Blob
        ? await makeThumbnail(file)
        : undefined
      : options.thumbnail || undefined;
  return { capsuleId, file, total, chunkBytes, chunks, name, mimeType, key, policy, finishPolicy, signal, thumbnail };
}

/**
 * Phase 2, begin: the session of the plan's key, new or resumed. When an
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
    const kind = result.Err.__kind__;
    // An earlier session of this file was aborted or expired: its key
    // stays taken, so the next generation of the key starts afresh.
    const finished = kind === 'SessionAborted' || kind === 'SessionExpired';
    if (!finished || generation + 1 >= KEY_GENERATIONS) throw new UploadFailed(result.Err, 'uploads_begin');
  }
}

/** What the canister holds of a session when this run begins. */
type ResumeState =
  /** The same file was uploaded before: that memory is the answer. */
  | { committed: CommittedUpload }
  /** `toSend[i]` is 1 for each chunk the canister still needs. */
  | { committed: undefined; toSend: Uint8Array };

/** Phase 3, resume status: the chunks still missing, or the committed memory. */
async function resumeStatus(actor: UploadActor, plan: UploadPlan, sessionId: bigint): Promise<ResumeState> {
  const { status, missing } = await sessionStatus(actor, sessionId, { retry: plan.policy, signal: plan.signal });
  if (status.committed) return { committed: status.committed };
  const toSend = new Uint8Array(plan.chunks);
  for (const i of missing) toSend[i] = 1;
  return { committed: undefined, toSend };
}

/**
 * Phase 4, send chunks: reads the file in order, hashes all of it, and
 * sends the chunks in `toSend` through `pool`; returns the whole file's
 * SHA-256 once every chunk sent was answered.
 */
async function sendChunks(
  actor: UploadActor,
  plan: UploadPlan,
  sessionId: bigint,
  toSend: Uint8Array,
  pool: Pool,
  counters: { chunkCalls: number },
  options: UploadOptions,
): Promise<{ digest: Uint8Array; resumedChunks: number }> {
  const { file, total, chunkBytes, chunks, policy, signal } = plan;
  const started = performance.now();
  const progress: UploadProgress = {
    totalBytes: total,
    sentBytes: 0,
    confirmedBytes: 0,
    resumedBytes: 0,
    bytesPerSecond: 0,
    secondsLeft: undefined,
  };
  const report = () => {
    const seconds = (performance.now() - started) / 1000;
    const thisRun = progress.confirmedBytes - progress.resumedBytes;
    progress.bytesPerSecond = seconds > 0 ? thisRun / seconds : 0;
    progress.secondsLeft =
      progress.bytesPerSecond > 0 ? (total - progress.confirmedBytes) / progress.bytesPerSecond : undefined;
    options.onProgress?.({ ...progress });
  };
  let resumedChunks = 0;
  const hasher = await newSha256();
  const read = (i: number) => readRange(file, i * chunkBytes, Math.min(total, (i + 1) * chunkBytes));
  // One chunk read ahead: the disk works while this one is hashed.
  let ahead = chunks > 0 ? read(0) : undefined;
  for (let i = 0; i < chunks; i++) {
    if (aborted(signal)) throw new UploadAborted(sessionId);
    const bytes = await ahead!;
    ahead = i + 1 < chunks ? read(i + 1) : undefined;
    // A read left behind by a failure must not become an unhandled rejection.
    ahead?.catch(() => undefined);
    // In file order: the whole-file digest streams with the reading.
    hasher.update(bytes);
    if (toSend[i] === 0) {
      resumedChunks++;
      progress.confirmedBytes += bytes.length;
      progress.resumedBytes += bytes.length;
      report();
      continue;
    }
    await pool.slot();
    if (aborted(signal)) throw new UploadAborted(sessionId);
    const chunkSha = options.chunkHashes ? await sha256(bytes) : undefined;
    progress.sentBytes += bytes.length;
    report();
    pool.run(async () => {
      await withRetry('uploads_put_chunk', policy, signal, async () => {
        counters.chunkCalls++;
        return unwrap(
          'uploads_put_chunk',
          await actor.uploads_put_chunk({ session_id: sessionId, index: i, bytes, sha256: chunkSha }),
        );
      });
      progress.confirmedBytes += bytes.length;
      report();
    });
  }
  await pool.drain();
  return { digest: hasher.digest(), resumedChunks };
}

/**
 * Phase 5, finish: the canister verifies the whole file's SHA-256 and
 * commits the memory (asked again while its hashing catches up).
 */
async function finishSession(
  actor: UploadActor,
  plan: UploadPlan,
  sessionId: bigint,
  digest: Uint8Array,
): Promise<CommittedUpload> {
  const { total, policy, finishPolicy, signal } = plan;
  return withRetry('uploads_finish', finishPolicy, signal, async () => {
    const result = await actor.uploads_finish({ session_id: sessionId, sha256: digest, byte_len: BigInt(total) });
    if (result.__kind__ === 'Ok') return result.Ok;
    switch (result.Err.__kind__) {
      case 'VerificationPending':
        return AGAIN;
      case 'AlreadyCommitted': {
        // An earlier finish executed but its reply was lost.
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
  const counters = { chunkCalls: 0 };
  try {
    const resume = await resumeStatus(actor, plan, sessionId);
    if (resume.committed) {
      return { ...resume.committed, sessionId, chunkCalls: counters.chunkCalls, resumedChunks: plan.chunks };
    }
    const { digest, resumedChunks } = await sendChunks(actor, plan, sessionId, resume.toSend, pool, counters, options);
    const committed = await finishSession(actor, plan, sessionId, digest);
    return { ...committed, sessionId, chunkCalls: counters.chunkCalls, resumedChunks };
  } catch (error) {
    // Nothing of this upload may still run once its promise settles.
    await pool.settle();
    if (aborted(signal)) {
      await abortUpload(actor, sessionId, plan.policy);
      throw new UploadAborted(sessionId);
    }
    throw error;
  }
}
