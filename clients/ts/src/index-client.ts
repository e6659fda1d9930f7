// Capsules across buckets: the index canister (`index/index.did`) places
// each capsule on a bucket canister (an upload canister it manages, on any
// of its subnets) and says where it lives; uploads and reads then go to
// that bucket with the rest of this client, unchanged.
//
// Routing comes only from `capsules_locate`, an UPDATE call: its answer is
// certified by the subnet's consensus, where a query's comes from one
// replica, which could send a user's photos to a foreign canister. The
// index's `capsules_mine` query is for listing, never for routing.

import type { Agent } from '@icp-sdk/core/agent';
import { Principal } from '@icp-sdk/core/principal';
import { type Backend, type Capsule, type MemoryRecord, createActor } from './bindings/backend.js';
import {
  type CapsuleLocation as IndexCapsuleLocation,
  type Index,
  type indexInterface,
  createActor as createIndexActor,
} from './bindings/index.js';
import { type Downloaded, type DownloadOptions, download } from './download.js';
import { ChunkTooLarge, PLACEMENT_ERROR_HANDLING, PlacementFailed, type PlacementError, UploadFailed } from './errors.js';
import { type ListMemoriesOptions, deleteMemory, listMemories } from './memories.js';
import { AGAIN, DEFAULT_RETRY, type RetryPolicy, once, withRetry } from './retry.js';
import { share, shareUrl } from './sharing.js';
import {
  type CallOptions,
  type UploadOptions,
  type UploadResult,
  byteLength,
  unwrap,
  upload,
  uploadKey,
  uploadName,
} from './upload.js';

/** The index's actor (`createIndexActor(indexId, { agent })`), or anything with its methods. */
export type IndexActor = indexInterface;

/** Where a capsule lives, as the index's `capsules_locate` (an update call) said. */
export interface CapsuleLocation {
  capsuleId: bigint;
  owner: Principal;
  /** Every bucket holding the capsule's memories, oldest first. */
  buckets: Principal[];
  /** Where new uploads go: the newest of `buckets`. */
  uploadBucket: Principal;
}

/**
 * A memory of a capsule managed by an index: memory ids are a bucket's
 * own, so a reference names the bucket that holds the memory.
 */
export interface MemoryRef {
  bucket: Principal | string;
  memoryId: bigint;
}

/** A memory as `IndexClient.listMemories` yields it: its record, and where it lives. */
export interface BucketMemory extends MemoryRecord {
  bucket: Principal;
  ref: MemoryRef;
}

/** What `IndexClient.upload` returns: `upload`'s result, and where the memory landed. */
export interface IndexUploadResult extends UploadResult {
  bucket: Principal;
  ref: MemoryRef;
  /** The key the upload began under, the same on every bucket it was sent to. */
  idempotencyKey: string;
  /** Sealed buckets the upload moved away from (0 normally). */
  relocations: number;
}

export interface LocateOptions extends CallOptions {
  /**
   * Ask the index again even when this capsule's location is cached (an
   * update call); the answer replaces the cached one.
   */
  fresh?: boolean;
}

function toLocation(l: IndexCapsuleLocation): CapsuleLocation {
  return { capsuleId: l.capsule_id, owner: l.owner, buckets: [...l.buckets], uploadBucket: l.upload_bucket };
}

function text(p: Principal | string): string {
  return typeof p === 'string' ? p : p.toText();
}

/**
 * Locations in memory, per index actor and capsule: answers of
 * `capsules_locate` (update calls) only, never of a query. A pending
 * promise is shared, so uploads started together make one call.
 */
const locations = new WeakMap<object, Map<bigint, Promise<CapsuleLocation>>>();

function cacheOf(index: IndexActor): Map<bigint, Promise<CapsuleLocation>> {
  let cache = locations.get(index);
  if (!cache) {
    cache = new Map();
    locations.set(index, cache);
  }
  return cache;
}

function policyOf(retry: Partial<RetryPolicy> | undefined): RetryPolicy {
  return { ...DEFAULT_RETRY, ...retry };
}

/** `capsules_locate` now: transport failures and `RegistrationPending` asked again with backoff. */
async function locateNow(index: IndexActor, capsuleId: bigint, options: CallOptions): Promise<CapsuleLocation> {
  return withRetry('capsules_locate', policyOf(options.retry), options.signal, async () => {
    const result = await index.capsules_locate(capsuleId);
    if (result.__kind__ === 'Ok') return toLocation(result.Ok);
    if (PLACEMENT_ERROR_HANDLING[result.Err.__kind__] === 'handled') return AGAIN;
    throw new PlacementFailed(result.Err, 'capsules_locate');
  });
}

/**
 * Where capsule `capsuleId` lives, by the index's `capsules_locate`: an
 * update call (consensus, never a single replica's query), cached in
 * memory per index actor and capsule, so it is asked once (`fresh: true`
 * asks again). The call completes a registration left pending, and when
 * the capsule's newest bucket is sealed, the index continues the capsule
 * in a further bucket first: the answer's `uploadBucket` is then new.
 * Throws `PlacementFailed` (`CapsuleNotFound`, `NoOpenBucket`, ...).
 */
export function locateCapsule(index: IndexActor, capsuleId: bigint, options: LocateOptions = {}): Promise<CapsuleLocation> {
  const cache = cacheOf(index);
  const cached = cache.get(capsuleId);
  if (cached && !options.fresh) return cached;
  const located = locateNow(index, capsuleId, options);
  cache.set(capsuleId, located);
  // A failure is not kept: the next call asks again.
  located.catch(() => {
    if (cache.get(capsuleId) === located) cache.delete(capsuleId);
  });
  return located;
}

/** Forgets the cached location of `capsuleId` (or of every capsule) of this index actor. */
export function forgetLocation(index: IndexActor, capsuleId?: bigint): void {
  if (capsuleId === undefined) locations.delete(index);
  else cacheOf(index).delete(capsuleId);
}

/**
 * Creates a capsule owned by the caller through the index, which places
 * it on the open bucket with the most room, and returns where it lives
 * (cached as `locateCapsule` would). Not sent again after a transport
 * failure (a second request could make a second capsule: look in
 * `capsules_mine`); a lost answer of the bucket (`RegistrationPending`)
 * is completed with `capsules_locate`. The index's other answers throw
 * `PlacementFailed`.
 */
export async function createCapsule(index: IndexActor, name: string, options: CallOptions = {}): Promise<CapsuleLocation> {
  const result = await once('capsules_create', () => index.capsules_create(name));
  if (result.__kind__ === 'Ok') {
    const location = toLocation(result.Ok);
    cacheOf(index).set(location.capsuleId, Promise.resolve(location));
    return location;
  }
  const error: PlacementError = result.Err;
  if (error.__kind__ === 'RegistrationPending') {
    return locateCapsule(index, error.RegistrationPending.capsule_id, { ...options, fresh: true });
  }
  throw new PlacementFailed(error, 'capsules_create');
}

/**
 * The capsules the caller owns, as the index lists them (its
 * `capsules_mine` query, page after page): for showing, not for routing,
 * so nothing here enters the location cache.
 */
export async function* listCapsules(
  index: IndexActor,
  options: { pageSize?: number } = {},
): AsyncGenerator<CapsuleLocation, void, undefined> {
  const limit = options.pageSize ?? 100;
  let after: bigint | null = null;
  for (;;) {
    const page = await index.capsules_mine(after, limit);
    yield* page.map(toLocation);
    if (page.length < limit) return;
    after = page[page.length - 1]!.capsule_id;
  }
}

/** How the gateway reaches a bucket in a share link's URL. */
export type GatewayRoute =
  /** The bucket's id as the host's first label: `https://<bucket>.icp0.io`, `http://<bucket>.localhost:<port>`. */
  | 'subdomain'
  /** The gateway's host as given and `?canisterId=<bucket>` after the link's path. */
  | 'query';

const CANISTER_LABEL = /^[a-z2-7]{5}(-[a-z2-7]{5}){3}-cai$/;

/**
 * The full URL of a share link of a memory held by `bucket`, through
 * `gateway`: a string with `{canister}` gets the bucket's id there
 * (`https://{canister}.icp0.io`); otherwise, by `route`, the bucket's id
 * becomes the host's first label (a loopback gateway, the local network's
 * `gateway`, becomes `http://<bucket>.localhost:<port>`, which browsers
 * resolve to loopback; a canister id already there is replaced), or
 * `?canisterId=<bucket>` follows the path.
 */
export function bucketShareUrl(
  gateway: string,
  bucket: Principal | string,
  path: string,
  route: GatewayRoute = 'subdomain',
): string {
  const id = text(bucket);
  if (gateway.includes('{canister}')) return shareUrl(gateway.replaceAll('{canister}', id), { path });
  const url = new URL(gateway);
  if (route === 'query') {
    const link = new URL(shareUrl(gateway, { path }));
    link.searchParams.set('canisterId', id);
    return link.toString();
  }
  const host = url.hostname;
  if (host === '127.0.0.1' || host === 'localhost' || host === '[::1]' || host === '::1') {
    url.hostname = `${id}.localhost`;
  } else {
    const labels = host.split('.');
    if (CANISTER_LABEL.test(labels[0]!)) labels[0] = id;
    else labels.unshift(id);
    url.hostname = labels.join('.');
  }
  return shareUrl(url.origin + url.pathname, { path });
}

export interface IndexClientOptions {
  /** The agent every actor uses (the dapp's `HttpAgent`, signed in). */
  agent: Agent;
  /** The index canister's id. */
  index: Principal | string;
  /**
   * The HTTP gateway share links go through: `https://icp0.io` (or
   * `https://{canister}.icp0.io`) on mainnet, the local network's
   * `gateway` locally. Without it, `share` needs one in its options.
   */
  gateway?: string;
  /** How the gateway reaches a bucket (default `'subdomain'`). */
  gatewayRoute?: GatewayRoute;
}

export interface IndexShareOptions {
  /** Overrides the client's `gateway`. */
  gateway?: string;
  gatewayRoute?: GatewayRoute;
  expiresAt?: Date;
  retry?: Partial<RetryPolicy>;
}

/** Sealed buckets one upload moves away from at most (an index's `MAX_BUCKETS_PER_CAPSULE` bounds it too). */
const MAX_RELOCATIONS = 8;

/**
 * The client of capsules an index manages: given the dapp's agent and the
 * index's id, it makes the index's actor and bucket actors on demand
 * (`createActor(bucketId, { agent })`, one per bucket), locates each
 * capsule once (`capsules_locate`, an update call, cached), and routes
 * uploads, downloads, listings and share links to the right bucket.
 */
export class IndexClient {
  readonly agent: Agent;
  /** The index's actor. */
  readonly index: Index;
  readonly indexId: Principal;
  readonly #options: IndexClientOptions;
  readonly #buckets = new Map<string, Backend>();

  constructor(options: IndexClientOptions) {
    this.#options = options;
    this.agent = options.agent;
    this.indexId = typeof options.index === 'string' ? Principal.fromText(options.index) : options.index;
    this.index = createIndexActor(this.indexId.toText(), { agent: options.agent });
  }

  /** The actor of bucket `bucket` (made once, on the client's agent). */
  bucket(bucket: Principal | string): Backend {
    const id = text(bucket);
    let actor = this.#buckets.get(id);
    if (!actor) {
      // Throws for a string that is not a principal.
      Principal.fromText(id);
      actor = createActor(id, { agent: this.agent });
      this.#buckets.set(id, actor);
    }
    return actor;
  }

  /** `createCapsule` through this client's index. */
  createCapsule(name: string, options: CallOptions = {}): Promise<CapsuleLocation> {
    return createCapsule(this.index, name, options);
  }

  /** `locateCapsule` through this client's index (cached; `fresh` asks again). */
  locate(capsuleId: bigint, options: LocateOptions = {}): Promise<CapsuleLocation> {
    return locateCapsule(this.index, capsuleId, options);
  }

  /** The capsules the caller owns (the index's `capsules_mine` query: for listing, not routing). */
  listCapsules(options: { pageSize?: number } = {}): AsyncGenerator<CapsuleLocation, void, undefined> {
    return listCapsules(this.index, options);
  }

  /** The capsule's record (name, owner, writers), from its upload bucket's `capsules_get`. */
  async capsule(capsuleId: bigint, options: CallOptions = {}): Promise<Capsule> {
    const { uploadBucket } = await this.locate(capsuleId, options);
    const actor = this.bucket(uploadBucket);
    return withRetry('capsules_get', policyOf(options.retry), options.signal, async () =>
      unwrap('capsules_get', await actor.capsules_get(capsuleId)),
    );
  }

  /**
   * Uploads `file` into capsule `capsuleId` on its upload bucket, with
   * `upload` (chunks, retries, resume by idempotency key, progress).
   *
   * The capsule is located once (cached). When that bucket answers
   * `BucketSealed` (the index sealed it: it takes no new uploads), the
   * capsule is located again, which continues it in a new bucket, and the
   * upload begins there under the same idempotency key. Before that, when
   * the capsule spans several buckets, an unfinished upload of the same
   * file (name and size, in `uploads_mine`) on an older bucket is resumed
   * there: a sealed bucket still finishes the uploads it began.
   */
  async upload(capsuleId: bigint, file: Blob | Uint8Array, options: UploadOptions = {}): Promise<IndexUploadResult> {
    let location = await this.locate(capsuleId, options);
    const resumed = await this.#resumeOnOlderBucket(location, capsuleId, file, options);
    if (resumed) return resumed;
    let key = options.idempotencyKey;
    for (let relocations = 0; ; relocations++) {
      const bucket = location.uploadBucket;
      const actor = this.bucket(bucket);
      key ??= await uploadKey(actor, capsuleId, file, options);
      try {
        const result = await upload(actor, capsuleId, file, { ...options, idempotencyKey: key });
        return { ...result, bucket, ref: { bucket, memoryId: result.memory_id }, idempotencyKey: key, relocations };
      } catch (error) {
        if (!(error instanceof UploadFailed && error.kind === 'BucketSealed') || relocations + 1 >= MAX_RELOCATIONS) {
          throw error;
        }
        location = await this.locate(capsuleId, { ...options, fresh: true });
        // The index did not move the capsule: nothing else to try.
        if (location.uploadBucket.toText() === bucket.toText()) throw error;
      }
    }
  }

  /** An unfinished upload of this file on an older bucket of the capsule, finished there. */
  async #resumeOnOlderBucket(
    location: CapsuleLocation,
    capsuleId: bigint,
    file: Blob | Uint8Array,
    options: UploadOptions,
  ): Promise<IndexUploadResult | undefined> {
    const older = location.buckets.filter((b) => b.toText() !== location.uploadBucket.toText()).reverse();
    if (older.length === 0) return undefined;
    const name = uploadName(file, options);
    const total = BigInt(byteLength(file));
    for (const bucket of older) {
      const actor = this.bucket(bucket);
      const open = (await withRetry('uploads_mine', policyOf(options.retry), options.signal, () => actor.uploads_mine())).find(
        (u) => u.capsule_id === capsuleId && u.name === name && u.byte_len === total,
      );
      if (!open) continue;
      const there = { ...options, chunkBytes: open.chunk_size };
      try {
        const key = await uploadKey(actor, capsuleId, file, there);
        const result = await upload(actor, capsuleId, file, { ...there, idempotencyKey: key });
        return { ...result, bucket, ref: { bucket, memoryId: result.memory_id }, idempotencyKey: key, relocations: 0 };
      } catch (error) {
        // Another file of that name and size, or a chunk size no longer
        // taken there: upload where the index says.
        const another =
          error instanceof ChunkTooLarge ||
          (error instanceof UploadFailed && (error.kind === 'BucketSealed' || error.kind === 'IdempotencyConflict'));
        if (!another) throw error;
      }
    }
    return undefined;
  }

  /** Reads memory `ref` from its bucket, SHA-256 checked (`download`). */
  download(ref: MemoryRef, options: DownloadOptions = {}): Promise<Downloaded> {
    return download(this.bucket(ref.bucket), ref.memoryId, options);
  }

  /**
   * Every memory of capsule `capsuleId`, bucket after bucket in the order
   * of its location (oldest first), each bucket's page after page.
   */
  async *listMemories(
    capsuleId: bigint,
    options: ListMemoriesOptions & LocateOptions = {},
  ): AsyncGenerator<BucketMemory, void, undefined> {
    const { buckets } = await this.locate(capsuleId, options);
    for (const bucket of buckets) {
      for await (const record of listMemories(this.bucket(bucket), capsuleId, options)) {
        yield { ...record, bucket, ref: { bucket, memoryId: record.memory_id } };
      }
    }
  }

  /**
   * A share link to memory `ref`, made and served by its bucket: the URL
   * names the bucket (see `bucketShareUrl`). As `share`, not sent again
   * after a transport failure.
   */
  async share(ref: MemoryRef, options: IndexShareOptions = {}): Promise<string> {
    const gateway = options.gateway ?? this.#options.gateway;
    if (gateway === undefined) throw new TypeError('share needs a gateway: give one to the IndexClient or to share');
    const route = options.gatewayRoute ?? this.#options.gatewayRoute;
    // Checked before the call: a bad gateway must not leave a link behind.
    bucketShareUrl(gateway, ref.bucket, '/', route);
    // `share` makes the link; its path is put on the bucket's URL.
    const plain = await share(this.bucket(ref.bucket), ref.memoryId, {
      gateway: 'http://gateway.invalid',
      expiresAt: options.expiresAt,
      retry: options.retry,
    });
    return bucketShareUrl(gateway, ref.bucket, new URL(plain).pathname, route);
  }

  /** Deletes memory `ref` on its bucket (`deleteMemory`). */
  deleteMemory(ref: MemoryRef, options: CallOptions = {}): Promise<void> {
    return deleteMemory(this.bucket(ref.bucket), ref.memoryId, options);
  }
}
