// Benchmark (not a test): the client's own cost for a 1 GiB upload in Node:
// hashing rate and peak memory above the baseline. The file is read from
// disk as a Blob (`fs.openAsBlob`), and the "canister" accepts every chunk
// at once and keeps nothing, so only the client is measured.
//
//   npm run bench [-- --mib 1024]
//
// Goal: at least 200 MB/s, and peak RSS under 64 MiB above the baseline.

import { createWriteStream, openAsBlob, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { newSha256 } from '../src/sha256';
import { upload, type UploadActor } from '../src/index';

const mibArg = process.argv.indexOf('--mib');
const MIB = mibArg > 0 ? Number(process.argv[mibArg + 1]) : 1024;
const total = MIB * 1024 * 1024;

/** Accepts everything at once; keeps only counts. */
function nullCanister(): UploadActor {
  let received = 0;
  const actor = {
    // The default chunk size comes from the canister's limits.
    stats: async () => ({ limits: { max_chunk_bytes: 1_900_000 } }),
    uploads_begin: async (b: { chunk_size: number; expected_chunks: number }) => ({
      __kind__: 'Ok',
      Ok: { session_id: 1n, provisional_memory_id: 1n, chunk_size: b.chunk_size, expected_chunks: b.expected_chunks, expires_at: 0n },
    }),
    uploads_status: async () => ({
      __kind__: 'Ok',
      Ok: { missing: [{ start: 0, end: Math.ceil(total / 1_900_000) }], committed: undefined, next_from_chunk: undefined },
    }),
    uploads_put_chunk: async (c: { bytes: Uint8Array }) => {
      received += c.bytes.length;
      return { __kind__: 'Ok', Ok: { newly_stored: true } };
    },
    uploads_finish: async (f: { sha256: Uint8Array; byte_len: bigint }) => ({
      __kind__: 'Ok',
      Ok: { sha256: f.sha256, byte_len: BigInt(received), memory_id: 1n, blob_id: 1n, capsule_id: 1n },
    }),
  };
  return actor as unknown as UploadActor;
}

async function writeTestFile(path: string): Promise<void> {
  const out = createWriteStream(path);
  const block = new Uint8Array(4 * 1024 * 1024);
  for (let i = 0; i < block.length; i++) block[i] = (i * 2654435761) >>> 24;
  for (let written = 0; written < total; written += block.length) {
    block[0] = written & 0xff; // every block differs
    if (!out.write(block.subarray(0, Math.min(block.length, total - written)))) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

const path = join(tmpdir(), `upload-bench-${process.pid}.bin`);
try {
  await writeTestFile(path);
  const file = await openAsBlob(path);
  globalThis.gc?.();
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);

  // The raw hashing rate of the library, on one chunk in memory.
  const chunk = new Uint8Array(1_900_000).fill(7);
  const hasher = await newSha256();
  let t = performance.now();
  for (let i = 0; i < 100; i++) hasher.update(chunk);
  hasher.digest();
  const hashRate = (100 * chunk.length) / ((performance.now() - t) / 1000);

  t = performance.now();
  const result = await upload(nullCanister(), 1n, file, { name: 'bench.bin' });
  const seconds = (performance.now() - t) / 1000;
  clearInterval(sampler);
  peak = Math.max(peak, process.memoryUsage().rss);
  const mb = (n: number) => (n / 1e6).toFixed(0);
  const mib = (n: number) => (n / 1024 / 1024).toFixed(1);
  console.log(`file                     ${MIB} MiB (${result.byte_len} bytes, ${result.chunkCalls} chunks)`);
  console.log(`sha256 alone             ${mb(hashRate)} MB/s`);
  console.log(`upload (read+hash+send)  ${mb(total / seconds)} MB/s in ${seconds.toFixed(1)} s`);
  console.log(`peak RSS above baseline  ${mib(peak - baseline)} MiB (baseline ${mib(baseline)} MiB)`);
} finally {
  rmSync(path, { force: true });
}
