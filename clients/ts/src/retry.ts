// Retries with exponential backoff and full jitter, for transport failures
// and `VerificationPending` only.

import { DelegationExpired, RetriesExhausted, UploadAborted, isDelegationExpiry, isTransportFailure } from './errors.js';

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 10, baseDelayMs: 100, maxDelayMs: 5_000 };

/** The wait before attempt `attempt + 1`: up to base·2^attempt, capped, jittered. */
export function backoffMs(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
  // Half fixed, half random: spread out clients that failed together.
  return ceiling / 2 + random() * (ceiling / 2);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new UploadAborted(undefined));
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new UploadAborted(undefined));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Marks a result to be asked for again (e.g. `VerificationPending`). */
export const AGAIN = Symbol('again');

/**
 * Runs `attempt` until it returns something other than `AGAIN`, retrying
 * transport failures and `AGAIN` with backoff; any other error is thrown
 * at once.
 */
export async function withRetry<T>(
  method: string,
  policy: RetryPolicy,
  signal: AbortSignal | undefined,
  attempt: () => Promise<T | typeof AGAIN>,
): Promise<T> {
  let lastFailure: unknown = undefined;
  for (let n = 0; n < policy.attempts; n++) {
    if (n > 0) await sleep(backoffMs(policy, n - 1), signal);
    try {
      const result = await attempt();
      if (result !== AGAIN) return result;
      lastFailure = 'asked to call again';
    } catch (error) {
      if (isDelegationExpiry(error)) throw new DelegationExpired(method, error);
      if (!isTransportFailure(error)) throw error;
      lastFailure = error;
    }
  }
  throw new RetriesExhausted(method, policy.attempts, lastFailure);
}

/**
 * Runs `call` once, for a call that must not be sent again as a new
 * request (the agent's own resends of the same request still happen);
 * a delegation's expiry becomes `DelegationExpired` as in `withRetry`.
 */
export async function once<T>(method: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (isDelegationExpiry(error)) throw new DelegationExpired(method, error);
    throw error;
  }
}
