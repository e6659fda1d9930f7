// A capsule's memories: all of them across pages, and deleting one.

import type { MemoryRecord } from './bindings/backend.js';
import { type ErrorActions, UploadFailed, actionFor, isTransportFailure } from './errors.js';
import { DEFAULT_RETRY, type RetryPolicy, withRetry } from './retry.js';
import { type CallOptions, type UploadActor, unwrap } from './upload.js';

/** The most memories the canister returns in one page (`MAX_PAGE` in `src/limits.rs`, fixed in the canister). */
export const MAX_PAGE = 1_000;
/** Memories asked for per `memories_list` by default. */
export const DEFAULT_PAGE_SIZE = 100;

export interface ListMemoriesOptions {
  /** Memories per `memories_list` query, 1 to `MAX_PAGE` (default 100). */
  pageSize?: number;
  retry?: Partial<RetryPolicy>;
}

/**
 * Every memory of capsule `capsuleId` (for its owner and writers), oldest
 * first, page after page of `memories_list`: `for await (const m of
 * listMemories(actor, capsuleId)) ...`. A page is asked for only when the
 * last one is used up; stopping early asks for no more. Throws
 * `UploadFailed` (`CapsuleNotFound`, `NotAuthorized`).
 */
export async function* listMemories(
  actor: UploadActor,
  capsuleId: bigint,
  options: ListMemoriesOptions = {},
): AsyncGenerator<MemoryRecord, void, undefined> {
  const limit = options.pageSize ?? DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
    throw new RangeError(`pageSize must be in 1..=${MAX_PAGE}`);
  }
  const policy = { ...DEFAULT_RETRY, ...options.retry };
  let after: bigint | undefined;
  for (;;) {
    const page = await withRetry('memories_list', policy, undefined, async () =>
      unwrap('memories_list', await actor.memories_list({ capsule_id: capsuleId, after, limit })),
    );
    yield* page.memories;
    if (page.next_after === undefined) return;
    after = page.next_after;
  }
}

/**
 * The `memories_delete` errors `deleteMemory` handles; the others are
 * thrown as `UploadFailed`.
 */
const DELETE_ERRORS = {
  // After a transport failure: the earlier attempt deleted it, and its
  // reply was lost.
  MemoryNotFound: 'doneIfReplyLost',
} as const satisfies ErrorActions<'memories_delete'>;

/**
 * Deletes memory `memoryId` (its uploader or the capsule's owner), its
 * share links with it, and frees its space. Transport failures are
 * retried; a retry that finds the memory gone counts as done (the earlier
 * attempt deleted it and its reply was lost). Throws `UploadFailed`
 * (`MemoryNotFound`, `NotAuthorized`, `AnonymousCaller`).
 */
export async function deleteMemory(
  actor: UploadActor,
  memoryId: bigint,
  options: CallOptions = {},
): Promise<void> {
  let lostReply = false;
  await withRetry('memories_delete', { ...DEFAULT_RETRY, ...options.retry }, options.signal, async () => {
    let result;
    try {
      result = await actor.memories_delete(memoryId);
    } catch (error) {
      lostReply ||= isTransportFailure(error);
      throw error;
    }
    if (result.__kind__ === 'Ok') return;
    if (lostReply && actionFor(DELETE_ERRORS, result.Err) === 'doneIfReplyLost') return;
    throw new UploadFailed(result.Err, 'memories_delete');
  });
}
