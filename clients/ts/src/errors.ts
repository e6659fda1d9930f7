// Typed failures: every `UploadError` of the canister surfaces as an
// `UploadFailed`, every `ShareError` as a `ShareFailed`, every
// `PlacementError` of the index as a `PlacementFailed`, whose
// `error.__kind__` the caller can switch on.

import { AgentError, ErrorKindEnum, HttpErrorCode, TimeoutWaitingForResponseErrorCode } from '@icp-sdk/core/agent';
import type { backendInterface } from './bindings/backend.js';
import type { indexInterface } from './bindings/index.js';

type ErrOf<R> = R extends { __kind__: 'Err'; Err: infer E } ? E : never;
type KindOf<E> = E extends { __kind__: infer K extends string } ? K : never;

/**
 * The error type of one canister method, read from its result in the
 * bindings: `MethodError<'uploads_begin'>` is what `uploads_begin` can
 * answer (`never` for a method without errors).
 */
export type MethodError<M extends keyof backendInterface> = ErrOf<Awaited<ReturnType<backendInterface[M]>>>;

/**
 * A table, for one method, of the error cases the client handles itself
 * and how (the rest are thrown). A case the method cannot answer fails
 * `tsc`, so each table follows its method's error type in `backend.did`.
 */
export type ErrorActions<M extends keyof backendInterface> = Partial<Record<KindOf<MethodError<M>>, string>>;

/**
 * The methods of the upload domain whose errors the client wraps in
 * `UploadFailed` (the other admin methods answer only `NotAuthorized` or
 * `OutOfSpace`, which the bindings give as enums).
 */
type UploadMethod =
  | 'capsules_create'
  | 'capsules_get'
  | 'capsules_grant_write'
  | 'capsules_revoke_write'
  | 'uploads_begin'
  | 'uploads_put_chunk'
  | 'uploads_finish'
  | 'uploads_abort'
  | 'uploads_status'
  | 'uploads_chunk_sha256'
  | 'memories_get'
  | 'memories_list'
  | 'memories_read'
  | 'memories_delete'
  | 'memories_set_thumbnail'
  | 'admin_set_limits';

/**
 * Any error an upload-domain method can answer: the union of their own
 * error types in `backend.did` (each a subset of the cases of v0.1.0's
 * `UploadError`, but for the bucket cases `ManagedByIndex` and
 * `BucketSealed`), so a case added to any of them reaches the tables below.
 */
export type UploadError = MethodError<UploadMethod>;
export type UploadErrorKind = KindOf<UploadError>;

/** Any error a share-link method can answer. */
export type ShareError = MethodError<'memories_share' | 'memories_shares' | 'memories_unshare'>;

/** What `table` (an `ErrorActions` of the method) says to do with `error`, if anything. */
export function actionFor<T extends Record<string, string>>(table: T, error: { __kind__: string }): T[keyof T] | undefined {
  return Object.hasOwn(table, error.__kind__) ? table[error.__kind__ as keyof T] : undefined;
}

/**
 * Every `UploadError` case and what a client does about it. Written out so
 * that a case added to `backend.did` fails `tsc` here until it is placed.
 */
export const UPLOAD_ERROR_HANDLING = {
  // Asked again with backoff by the client itself.
  VerificationPending: 'retried',
  // Handled inside `upload` (next key generation, or the committed memory).
  SessionAborted: 'handled',
  SessionExpired: 'handled',
  AlreadyCommitted: 'handled',
  // The caller's to decide: thrown as `UploadFailed`.
  ChunkNotReceived: 'thrown',
  SessionNotFound: 'thrown',
  ChunkChecksumMismatch: 'thrown',
  OutOfSpace: 'thrown',
  IndexOutOfRange: 'thrown',
  CapsuleNotFound: 'thrown',
  NotAuthorized: 'thrown',
  DeclaredHashesDisagree: 'thrown',
  ChunkConflict: 'thrown',
  IdempotencyConflict: 'thrown',
  InvalidArgument: 'thrown',
  MemoryNotFound: 'thrown',
  ChecksumMismatch: 'thrown',
  WrongChunkLength: 'thrown',
  AnonymousCaller: 'thrown',
  QuotaExceeded: 'thrown',
  RangeOutOfBounds: 'thrown',
  DeclaredValuesDisagree: 'thrown',
  Incomplete: 'thrown',
  // Only on a canister an index manages: create the capsule, or begin
  // the upload, where the index says.
  ManagedByIndex: 'thrown',
  BucketSealed: 'thrown',
} as const satisfies Record<UploadErrorKind, 'retried' | 'handled' | 'thrown'>;

/** The canister answered with one of its `UploadError` cases. */
export class UploadFailed extends Error {
  override readonly name = 'UploadFailed';
  constructor(
    /** The canister's error, a tagged union: switch on `error.__kind__`. */
    readonly error: UploadError,
    /** The canister method that answered it. */
    readonly method: string,
  ) {
    super(`${method}: ${describe(error)}`);
  }

  get kind(): UploadErrorKind {
    return this.error.__kind__;
  }
}

export type ShareErrorKind = ShareError['__kind__'];

/**
 * Every `ShareError` case (the answers of `memories_share`,
 * `memories_shares` and `memories_unshare`) and what the client does
 * about it; a case added to `backend.did` fails `tsc` here too.
 */
export const SHARE_ERROR_HANDLING = {
  // `share` asks again with backoff: no link was made.
  RandomnessUnavailable: 'retried',
  // The caller's to decide: thrown as `ShareFailed`.
  TooManyLinks: 'thrown',
  NotAuthorized: 'thrown',
  LinkNotFound: 'thrown',
  InvalidArgument: 'thrown',
  MemoryNotFound: 'thrown',
  CapacityExhausted: 'thrown',
  AnonymousCaller: 'thrown',
} as const satisfies Record<ShareErrorKind, 'retried' | 'thrown'>;

/** The canister answered a share call with one of its `ShareError` cases. */
export class ShareFailed extends Error {
  override readonly name = 'ShareFailed';
  constructor(
    /** The canister's error, a tagged union: switch on `error.__kind__`. */
    readonly error: ShareError,
    /** The canister method that answered it. */
    readonly method: string,
  ) {
    super(`${method}: ${describe(error)}`);
  }

  get kind(): ShareErrorKind {
    return this.error.__kind__;
  }
}

/**
 * The error type of one method of the index canister (`index/index.did`),
 * read from its result in the index's bindings, as `MethodError` is for
 * the bucket's methods.
 */
export type IndexMethodError<M extends keyof indexInterface> = ErrOf<Awaited<ReturnType<indexInterface[M]>>>;

/** What the index's `capsules_create` and `capsules_locate` can answer. */
export type PlacementError = IndexMethodError<'capsules_create' | 'capsules_locate'>;
export type PlacementErrorKind = KindOf<PlacementError>;

/** What the index's admin methods (controllers only) can answer. */
export type IndexAdminError = IndexMethodError<'admin_set_bucket_state'>;

/**
 * Every `PlacementError` case and what the client does about it; a case
 * added to `index/index.did` fails `tsc` here until it is placed.
 */
export const PLACEMENT_ERROR_HANDLING = {
  // `createCapsule`: the capsule is recorded but the bucket's answer was
  // lost; `capsules_locate` completes the registration (asked again with
  // backoff while it is still pending).
  RegistrationPending: 'handled',
  // The caller's to decide: thrown as `PlacementFailed`. `NoOpenBucket`
  // and `BucketUnavailable` mean "later": the index is making room.
  NoOpenBucket: 'thrown',
  BucketUnavailable: 'thrown',
  CapsuleNotFound: 'thrown',
  CapsuleSpansTooManyBuckets: 'thrown',
  NotAuthorized: 'thrown',
  InvalidArgument: 'thrown',
  CapsulesPerOwnerExceeded: 'thrown',
  AnonymousCaller: 'thrown',
} as const satisfies Record<PlacementErrorKind, 'handled' | 'thrown'>;

/** The index answered `capsules_create` or `capsules_locate` with a `PlacementError`. */
export class PlacementFailed extends Error {
  override readonly name = 'PlacementFailed';
  constructor(
    /** The index's error, a tagged union: switch on `error.__kind__`. */
    readonly error: PlacementError,
    /** The index method that answered it. */
    readonly method: 'capsules_create' | 'capsules_locate',
  ) {
    super(`${method}: ${describe(error)}`);
  }

  get kind(): PlacementErrorKind {
    return this.error.__kind__;
  }
}

/**
 * `upload`'s `chunkBytes` is above the largest chunk the canister takes
 * now (`stats().limits.max_chunk_bytes`, which its controllers set):
 * refused before any update call.
 */
export class ChunkTooLarge extends RangeError {
  override readonly name = 'ChunkTooLarge';
  constructor(
    readonly chunkBytes: number,
    /** The canister's `limits.max_chunk_bytes`. */
    readonly maxChunkBytes: number,
  ) {
    super(
      `chunkBytes ${chunkBytes} is above the canister's max_chunk_bytes ${maxChunkBytes} ` +
        '(stats().limits, set by its controllers); nothing was sent',
    );
  }
}

/** `download` read bytes whose SHA-256 is not the memory's. */
export class DownloadCorrupted extends Error {
  override readonly name = 'DownloadCorrupted';
  constructor(
    readonly memoryId: bigint,
    readonly expected: Uint8Array,
    readonly actual: Uint8Array,
  ) {
    super(`memory ${memoryId}: SHA-256 ${hex(actual)} read, ${hex(expected)} recorded`);
  }
}

/** The caller's `AbortSignal` fired; the session was aborted on the canister if one was open. */
export class UploadAborted extends Error {
  override readonly name = 'AbortError';
  constructor(readonly sessionId: bigint | undefined) {
    super(sessionId === undefined ? 'upload aborted' : `upload aborted (session ${sessionId} aborted)`);
  }
}

/** A call kept failing in transport after every retry. */
export class RetriesExhausted extends Error {
  override readonly name = 'RetriesExhausted';
  constructor(
    readonly method: string,
    readonly attempts: number,
    override readonly cause: unknown,
  ) {
    super(`${method}: transport failed ${attempts} times; last: ${String(cause)}`);
  }
}

/**
 * The identity's delegation expired (Internet Identity's session ended):
 * the network refused the call before it ran. Sign in again and call
 * `upload` with the same file: it resumes where this one stopped.
 */
export class DelegationExpired extends Error {
  override readonly name = 'DelegationExpired';
  constructor(
    readonly method: string,
    override readonly cause: unknown,
  ) {
    super(`${method}: the sign-in (delegation) expired; sign in again to continue`);
  }
}

/**
 * Whether a thrown error is a transport failure: the call may or may not
 * have executed, so only an idempotent call may be sent again. Rejects
 * and traps are not: the canister answered. A 5xx or 429 from the
 * boundary (after the agent's own retries) and a call whose status the
 * agent stopped polling for are transport failures too.
 */
export function isTransportFailure(error: unknown): boolean {
  if (error instanceof AgentError) {
    if (error.kind === ErrorKindEnum.Transport) return true;
    if (error.hasCode(HttpErrorCode)) {
      const { status } = error.code as HttpErrorCode;
      return status >= 500 || status === 429;
    }
    return error.hasCode(TimeoutWaitingForResponseErrorCode);
  }
  // `fetch` itself throws a TypeError when the connection fails.
  return error instanceof TypeError && /fetch|network/i.test(error.message);
}

/** Whether the IC refused a request because its delegation expired. */
export function isDelegationExpiry(error: unknown): boolean {
  return (
    error instanceof AgentError &&
    error.hasCode(HttpErrorCode) &&
    (error.code as HttpErrorCode).status === 400 &&
    /Invalid delegation expiry/.test((error.code as HttpErrorCode).bodyText ?? '')
  );
}

export function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function describe(error: UploadError | ShareError | PlacementError): string {
  const { __kind__, ...rest } = error as { __kind__: string } & Record<string, unknown>;
  const detail = rest[__kind__];
  if (detail === null || detail === undefined) return __kind__;
  return `${__kind__} ${JSON.stringify(detail, (_k, v: unknown) =>
    typeof v === 'bigint'
      ? v.toString()
      : v instanceof Uint8Array
        ? hex(v)
        : // A Principal, after JSON.stringify called its toJSON: its text.
          v !== null && typeof v === 'object' && '__principal__' in v
          ? (v as { __principal__: string }).__principal__
          : v,
  )}`;
}
