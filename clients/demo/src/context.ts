// What every part of the page shares: where memories live, where it
// points, and the status line.
//
// The page runs on one upload canister (`canister` parameter) or on an
// index (`index` parameter), which places each capsule on a bucket
// canister: then a capsule's memories may span buckets, each memory lives
// on one (its `bucket`), and uploads go where the index says.

import type { Backend, MemoryRecord, UploadOptions, UploadResult } from '../../ts/src/index';
import type { Where } from './messages';

/** A memory as the page shows it: its record, and the bucket holding it (none: the page's canister). */
export type PageMemory = MemoryRecord & { bucket?: string };

export interface PageContext {
  /** The actor of `bucket`, or of the page's canister when none is named. */
  actorOf(bucket?: string): Backend;
  /** The canisters holding capsule `capsule`'s memories, oldest first (`[undefined]`: the page's canister). */
  bucketsOf(capsule: bigint): Promise<(string | undefined)[]>;
  /** Uploads `file` into `capsule` where its uploads go now; says on which bucket it landed. */
  upload(capsule: bigint, file: File, options: UploadOptions): Promise<UploadResult & { bucket?: string }>;
  where: Where;
  /** The share links' base URL (the `gateway` parameter); none: no sharing. */
  gateway: string | undefined;
  /** The share links' base URL for a memory of `bucket` (the bucket's own host on an index). */
  gatewayOf(bucket?: string): string | undefined;
  chunkBytes: number | undefined;
  inFlight: number | undefined;
  /** Shows one sentence in the status line. */
  say(text: string, kind?: 'ok' | 'error' | ''): void;
  /** Shows the sentence for `error` (its details go to the console) and returns it. */
  report(error: unknown): string;
}
