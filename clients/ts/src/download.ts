// Download a memory: ranges read in parallel, the whole checked against
// the SHA-256 the canister recorded at commit.

import { newSha256 } from './sha256.js';
import type { MemoryRecord } from './bindings/backend.js';
import { DownloadCorrupted } from './errors.js';
import { Pool } from './pool.js';
import { DEFAULT_RETRY, withRetry } from './retry.js';
import { type CallOptions, type UploadActor, DEFAULT_IN_FLIGHT, unwrap } from './upload.js';

/**
 * The canister's largest read (`MAX_READ_BYTES` in `src/limits.rs`: a
 * replicated reply may be 2 MiB). Fixed in the canister, not one of the
 * `Limits` its controllers set, so `stats()` does not report it.
 */
export const MAX_READ_BYTES = 1_900_000;

export interface DownloadOptions extends CallOptions {
  inFlight?: number;
  /** Bytes per `memories_read`, at most (and by default) `MAX_READ_BYTES`. */
  rangeBytes?: number;
  onProgress?: (receivedBytes: number, totalBytes: number) => void;
}

export interface Downloaded {
  record: MemoryRecord;
  blob: Blob;
}

/** Reads memory `memoryId` and verifies it; throws `DownloadCorrupted` on a wrong digest. */
export async function download(actor: UploadActor, memoryId: bigint, options: DownloadOptions = {}): Promise<Downloaded> {
  const policy = { ...DEFAULT_RETRY, ...options.retry };
  const rangeBytes = options.rangeBytes ?? MAX_READ_BYTES;
  if (!Number.isInteger(rangeBytes) || rangeBytes < 1 || rangeBytes > MAX_READ_BYTES) {
    throw new RangeError(`rangeBytes must be in 1..=${MAX_READ_BYTES}`);
  }
  const record = await withRetry('memories_get', policy, options.signal, async () =>
    unwrap('memories_get', await actor.memories_get(memoryId)),
  );
  const total = Number(record.byte_len);
  const parts: Uint8Array[] = new Array<Uint8Array>(Math.ceil(total / rangeBytes));
  const pool = new Pool(options.inFlight ?? DEFAULT_IN_FLIGHT);
  let received = 0;
  for (let i = 0; i < parts.length; i++) {
    await pool.slot();
    const offset = i * rangeBytes;
    const length = Math.min(rangeBytes, total - offset);
    pool.run(async () => {
      const bytes = await withRetry('memories_read', policy, options.signal, async () =>
        unwrap(
          'memories_read',
          await actor.memories_read({ memory_id: memoryId, offset: BigInt(offset), length: BigInt(length) }),
        ),
      );
      if (bytes.length !== length) {
        throw new RangeError(`memories_read returned ${bytes.length} bytes for a ${length}-byte range`);
      }
      parts[i] = bytes;
      received += length;
      options.onProgress?.(received, total);
    });
  }
  await pool.drain();
  const hasher = await newSha256();
  for (const part of parts) hasher.update(part);
  const actual = hasher.digest();
  const expected = record.sha256;
  if (actual.length !== expected.length || actual.some((b, i) => b !== expected[i])) {
    throw new DownloadCorrupted(memoryId, expected, actual);
  }
  return { record, blob: new Blob(parts as Uint8Array<ArrayBuffer>[], { type: record.mime_type }) };
}
