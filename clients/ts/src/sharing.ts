// Share links: a memory readable by anyone who has the URL, through the
// IC's HTTP gateway (`https://<canister-id>.icp0.io/s/...`), until the
// link is revoked, expires or the memory is deleted.

import type { ShareLink } from './bindings/backend.js';
import { SHARE_ERROR_HANDLING, ShareFailed, isTransportFailure } from './errors.js';
import { DEFAULT_RETRY, type RetryPolicy, backoffMs, once, sleep, withRetry } from './retry.js';
import type { UploadActor } from './upload.js';

export interface ShareOptions {
  /**
   * The HTTP gateway's base URL: `https://<canister-id>.icp0.io` on
   * mainnet, the local network's `gateway` locally.
   */
  gateway: string;
  /** When the link stops answering; none by default. Must be in the future. */
  expiresAt?: Date;
  /** Backoff while the canister's randomness is unavailable (`RandomnessUnavailable`). */
  retry?: Partial<RetryPolicy>;
}

/**
 * The full URL of a share link: the gateway's base URL and the link's
 * `path` (`/s/<memory_id>/<link_id>/<key>`).
 */
export function shareUrl(gateway: string, link: Pick<ShareLink, 'path'>): string {
  // Throws a TypeError for a gateway that is not an absolute URL.
  new URL(gateway);
  return `${gateway.replace(/\/+$/, '')}${link.path}`;
}

/** Nanoseconds since the epoch, as the canister keeps time. */
function nanoseconds(at: Date): bigint {
  const ms = at.getTime();
  if (!Number.isFinite(ms)) throw new RangeError('expiresAt is not a valid Date');
  return BigInt(ms) * 1_000_000n;
}

/**
 * Creates a share link to memory `memoryId` (the capsule's owner or the
 * memory's uploader) and returns its full URL. Anyone who has the URL can
 * read the memory: it is the only key. The link answers 404 until its
 * `ready` (see `shares`): at once for memories up to some 32 MiB, after a
 * few timer steps of the canister for longer ones.
 *
 * Not sent again after a transport failure (a second request would make a
 * second link); `RandomnessUnavailable` is asked again with backoff. The
 * canister's other answers throw `ShareFailed`.
 */
export async function share(actor: UploadActor, memoryId: bigint, options: ShareOptions): Promise<string> {
  const policy = { ...DEFAULT_RETRY, ...options.retry };
  const expiresAt = options.expiresAt === undefined ? null : nanoseconds(options.expiresAt);
  // Checked before the call: a bad gateway must not leave a link behind.
  shareUrl(options.gateway, { path: '/' });
  for (let attempt = 0; ; attempt++) {
    const result = await once('memories_share', () => actor.memories_share(memoryId, expiresAt));
    if (result.__kind__ === 'Ok') return shareUrl(options.gateway, result.Ok);
    if (SHARE_ERROR_HANDLING[result.Err.__kind__] !== 'retried' || attempt + 1 >= policy.attempts) {
      throw new ShareFailed(result.Err, 'memories_share');
    }
    await sleep(backoffMs(policy, attempt));
  }
}

/**
 * Revokes share link `linkId`: from then on its URL answers 404 (a
 * browser may still hold it in its cache for up to an hour). Transport
 * failures are retried; a retry that finds the link gone counts as done
 * (the earlier attempt revoked it and its reply was lost).
 */
export async function unshare(actor: UploadActor, linkId: bigint, options: { retry?: Partial<RetryPolicy> } = {}): Promise<void> {
  let lostReply = false;
  await withRetry('memories_unshare', { ...DEFAULT_RETRY, ...options.retry }, undefined, async () => {
    let result;
    try {
      result = await actor.memories_unshare(linkId);
    } catch (error) {
      lostReply ||= isTransportFailure(error);
      throw error;
    }
    if (result.__kind__ === 'Ok') return;
    if (lostReply && result.Err.__kind__ === 'LinkNotFound') return;
    throw new ShareFailed(result.Err, 'memories_unshare');
  });
}

/** The share links of memory `memoryId` (the capsule's owner or the memory's uploader). */
export async function shares(
  actor: UploadActor,
  memoryId: bigint,
  options: { retry?: Partial<RetryPolicy> } = {},
): Promise<ShareLink[]> {
  return withRetry('memories_shares', { ...DEFAULT_RETRY, ...options.retry }, undefined, async () => {
    const result = await actor.memories_shares(memoryId);
    if (result.__kind__ === 'Err') throw new ShareFailed(result.Err, 'memories_shares');
    return result.Ok;
  });
}
