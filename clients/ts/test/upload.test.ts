// The client against the real canister `.wasm` on the loopback net.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createHash } from 'node:crypto';

const sha256 = (bytes: Uint8Array) => new Uint8Array(createHash('sha256').update(bytes).digest());
import {
  ChunkTooLarge,
  DownloadCorrupted,
  MAX_CHUNK_BYTES,
  UploadAborted,
  UploadFailed,
  defaultChunkBytes,
  download,
  resumableUploads,
  sessionStatus,
  upload,
  uploadLimits,
  type UploadActor,
} from '../src/index';
import { type Limits, SessionStatus } from '../src/bindings/backend';
import {
  type NetworkProcess,
  actorFor,
  admin,
  freshCanister,
  methodOf,
  newIdentity,
  sameBytes,
  startNetwork,
  stats,
  testBytes,
} from './support';

let net: NetworkProcess;
before(async () => {
  net = await startNetwork();
});
after(() => net.stop());

/** A fresh canister, a signed-in user and a capsule of theirs. */
async function setup(options: { fetch?: typeof fetch; retryTimes?: number } = {}) {
  const canister = await freshCanister(net);
  const identity = newIdentity();
  const actor = actorFor(net, canister, { identity, ...options });
  const created = await actor.capsules_create('test');
  assert.equal(created.__kind__, 'Ok');
  const capsuleId = (created as { Ok: { capsule_id: bigint } }).Ok.capsule_id;
  await admin(net, 'stats/reset');
  await admin(net, 'faults', {});
  return { canister, identity, actor, capsuleId };
}

async function downloadedBytes(actor: UploadActor, memoryId: bigint): Promise<Uint8Array> {
  const { blob } = await download(actor, memoryId);
  return new Uint8Array(await blob.arrayBuffer());
}

/** Wraps `fetch`, counting calls in flight per method. */
function countingFetch() {
  let inFlight = 0;
  const counter = {
    maxInFlight: 0,
    calls: new Map<string, number>(),
    fetch: (async (input: RequestInfo | URL, init?: RequestInit) => {
      const method = methodOf(input, init) ?? 'other';
      counter.calls.set(method, (counter.calls.get(method) ?? 0) + 1);
      inFlight++;
      counter.maxInFlight = Math.max(counter.maxInFlight, inFlight);
      try {
        return await fetch(input, init);
      } finally {
        inFlight--;
      }
    }) as typeof fetch,
  };
  return counter;
}

describe('sizes', () => {
  for (const [label, size] of [
    ['0 B', 0],
    ['1 B', 1],
    ['exactly one chunk', MAX_CHUNK_BYTES],
    ['one chunk + 1 B', MAX_CHUNK_BYTES + 1],
  ] as const) {
    test(`${label} uploads and downloads byte-exact`, async () => {
      const { actor, capsuleId } = await setup();
      const data = testBytes(size, size + 7);
      const result = await upload(actor, capsuleId, data, { name: label, mimeType: 'application/x-test' });
      assert.equal(result.byte_len, BigInt(size));
      assert.deepEqual(result.sha256, sha256(data));
      assert.equal(result.chunkCalls, Math.ceil(size / MAX_CHUNK_BYTES));
      assert.ok(sameBytes(await downloadedBytes(actor, result.memory_id), data));
      const record = await actor.memories_get(result.memory_id);
      assert.equal(record.__kind__ === 'Ok' && record.Ok.name, label);
    });
  }

  test('a Blob, read slice by slice, with per-chunk hashes sent', async () => {
    const { actor, capsuleId } = await setup();
    const data = testBytes(10 * 1000 + 1, 21);
    const blob = new Blob([data as Uint8Array<ArrayBuffer>], { type: 'image/png' });
    const sent: (Uint8Array | undefined)[] = [];
    const putChunk = actor.uploads_put_chunk.bind(actor);
    actor.uploads_put_chunk = (arg) => {
      sent.push(arg.sha256);
      return putChunk(arg);
    };
    const result = await upload(actor, capsuleId, blob, { chunkBytes: 1000, chunkHashes: true });
    assert.equal(sent.length, 11);
    assert.deepEqual(sent[10], sha256(data.subarray(10_000)));
    const record = await actor.memories_get(result.memory_id);
    assert.equal(record.__kind__ === 'Ok' && record.Ok.mime_type, 'image/png');
    assert.ok(sameBytes(await downloadedBytes(actor, result.memory_id), data));
  });

  test('40 MiB with 12 calls in flight', async () => {
    const counter = countingFetch();
    const { actor, capsuleId } = await setup({ fetch: counter.fetch });
    const data = testBytes(40 * 1024 * 1024, 40);
    const seen: number[] = [];
    const result = await upload(actor, capsuleId, data, {
      onProgress: (p) => seen.push(p.confirmedBytes),
    });
    const chunks = Math.ceil(data.length / MAX_CHUNK_BYTES);
    assert.equal(result.chunkCalls, chunks);
    assert.equal(counter.calls.get('uploads_put_chunk'), chunks);
    assert.equal(counter.maxInFlight, 12);
    assert.equal(seen.at(-1), data.length);
    assert.ok(seen.every((b, i) => i === 0 || b >= seen[i - 1]!), 'confirmed bytes never go back');
    assert.deepEqual(result.sha256, sha256(data));
    assert.ok(sameBytes(await downloadedBytes(actor, result.memory_id), data));
  });
});

describe('limits', () => {
  /** A controller's actor for `canister`, and a way to change one of its limits. */
  async function asController(canister: string) {
    const controller = actorFor(net, canister, { identity: net.controller });
    return async (change: Partial<Limits>) => {
      const { limits } = await controller.stats();
      const set = await controller.admin_set_limits({ ...limits, ...change });
      assert.equal(set.__kind__, 'Ok');
    };
  }

  /** Records the length of every chunk `actor` sends. */
  function chunkLengths(actor: UploadActor): number[] {
    const lengths: number[] = [];
    const putChunk = actor.uploads_put_chunk.bind(actor);
    actor.uploads_put_chunk = (arg) => {
      lengths.push(arg.bytes.length);
      return putChunk(arg);
    };
    return lengths;
  }

  test("a controller lowers max_chunk_bytes to 256 KiB: a default upload of 3 MiB sends 256 KiB chunks (one stats query)", async () => {
    const { canister, actor, capsuleId } = await setup();
    const setLimits = await asController(canister);
    const lowered = 256 * 1024;
    await setLimits({ max_chunk_bytes: lowered });
    assert.equal(await defaultChunkBytes(actor), lowered);
    assert.equal((await uploadLimits(actor)).max_chunk_bytes, lowered);

    const lengths = chunkLengths(actor);
    await admin(net, 'stats/reset');
    const data = testBytes(3 * 1024 * 1024 + 99, 44);
    let chunkSize: number | undefined;
    const result = await upload(actor, capsuleId, data, { onSession: (s) => (chunkSize = s.chunk_size) });
    assert.equal(chunkSize, lowered);
    assert.equal(result.chunkCalls, 13);
    assert.deepEqual(lengths, [...Array<number>(12).fill(lowered), 99]);
    assert.equal((await stats(net)).calls.stats, 1, 'one stats query for the upload');
    assert.deepEqual(result.sha256, sha256(data));
    assert.ok(sameBytes(await downloadedBytes(actor, result.memory_id), data));

    // Raised again: the next upload of the same actor follows (nothing is
    // cached across uploads).
    await setLimits({ max_chunk_bytes: 2 * lowered });
    lengths.length = 0;
    const again = await upload(actor, capsuleId, testBytes(5 * lowered, 45));
    assert.equal(again.chunkCalls, 3);
    assert.deepEqual(lengths, [2 * lowered, 2 * lowered, lowered]);
  });

  test("a chunkBytes above the canister's max_chunk_bytes is refused with ChunkTooLarge before any update call", async () => {
    const { canister, actor, capsuleId } = await setup();
    const lowered = 256 * 1024;
    await (await asController(canister))({ max_chunk_bytes: lowered });
    await admin(net, 'stats/reset');
    await assert.rejects(upload(actor, capsuleId, testBytes(lowered + 1, 46), { chunkBytes: lowered + 1 }), (e: unknown) => {
      assert.ok(e instanceof ChunkTooLarge, String(e));
      assert.ok(e instanceof RangeError);
      assert.equal(e.chunkBytes, lowered + 1);
      assert.equal(e.maxChunkBytes, lowered);
      assert.match(e.message, /max_chunk_bytes 262144/);
      return true;
    });
    const s = await stats(net);
    assert.equal(s.calls.stats, 1);
    assert.deepEqual(Object.keys(s.calls), ['stats'], 'no update call');
    assert.deepEqual(await resumableUploads(actor), []);

    // One within the limit is taken as it is.
    const data = testBytes(1000, 47);
    const result = await upload(actor, capsuleId, data, { chunkBytes: 100 });
    assert.equal(result.chunkCalls, 10);
    assert.ok(sameBytes(await downloadedBytes(actor, result.memory_id), data));
  });

  test('by default the chunk size is MAX_CHUNK_BYTES', async () => {
    const { actor } = await setup();
    assert.equal(await defaultChunkBytes(actor), MAX_CHUNK_BYTES);
  });
});

describe('resume', () => {
  test('a run killed half way, resumed, sends only the missing chunks', async () => {
    const { canister, identity, capsuleId } = await setup();
    const chunkBytes = 64 * 1024;
    const data = testBytes(40 * chunkBytes + 123, 5);
    const chunks = 41;
    // The first run's "process" dies after 20 chunk calls: every later
    // call fails in transport, and nothing retries.
    let chunkCallsBeforeDeath = 0;
    const dying = (async (input: RequestInfo | URL, init?: RequestInit) => {
      if (methodOf(input, init) === 'uploads_put_chunk' && ++chunkCallsBeforeDeath > 20) {
        throw new TypeError('fetch failed: the tab was closed');
      }
      return fetch(input, init);
    }) as typeof fetch;
    const first = actorFor(net, canister, { identity, fetch: dying });
    await assert.rejects(
      upload(first, capsuleId, data, { name: 'f', chunkBytes, inFlight: 4, retry: { attempts: 1 } }),
      /transport failed/,
    );
    const actor = actorFor(net, canister, { identity });
    const open = await resumableUploads(actor);
    assert.equal(open.length, 1);
    const stored = open[0]!.received_chunks;
    assert.equal(stored, 20, "the 20 chunk calls made before the kill");
    const { missing } = await sessionStatus(actor, open[0]!.session_id);
    assert.equal(missing.length, chunks - stored);

    await admin(net, 'stats/reset');
    const result = await upload(actor, capsuleId, data, { name: 'f', chunkBytes });
    const s = await stats(net);
    assert.equal(s.calls.uploads_put_chunk, chunks - stored, 'only the missing chunks are sent');
    assert.equal(result.chunkCalls, chunks - stored);
    assert.equal(result.resumedChunks, stored);
    assert.equal(result.sessionId, open[0]!.session_id);
    assert.ok(sameBytes(await downloadedBytes(actor, result.memory_id), data));
    assert.deepEqual(await resumableUploads(actor), []);
  });

  test('the same file again returns the memory it made, sending nothing', async () => {
    const { actor, capsuleId } = await setup();
    const data = testBytes(3000, 9);
    const first = await upload(actor, capsuleId, data, { name: 'again', chunkBytes: 1000 });
    await admin(net, 'stats/reset');
    const second = await upload(actor, capsuleId, data, { name: 'again', chunkBytes: 1000 });
    assert.equal(second.memory_id, first.memory_id);
    assert.equal((await stats(net)).calls.uploads_put_chunk, undefined);
  });
});

describe('faults', () => {
  test('every 7th call dropped before or after execution, replies reordered: byte-exact, no chunk stored twice', async () => {
    // The agent's own retries off: each failure reaches the client, which
    // sends the chunk again as a new request (the canister's idempotency is
    // what keeps it stored once).
    const { actor, capsuleId } = await setup({ retryTimes: 0 });
    const chunkBytes = 32 * 1024;
    const data = testBytes(60 * chunkBytes + 5, 77);
    // Which chunks the canister said it newly stored, per reply that arrived.
    const newlyStored: number[] = [];
    const putChunk = actor.uploads_put_chunk.bind(actor);
    actor.uploads_put_chunk = async (arg) => {
      const reply = await putChunk(arg);
      if (reply.__kind__ === 'Ok' && reply.Ok.newly_stored) newlyStored.push(arg.index);
      return reply;
    };
    // Signed requests leave the agent tens of milliseconds apart (each is
    // hashed and signed), so replies are held up to 200 ms to overtake.
    await admin(net, 'faults', { drop_every: 7, drop_point: 'alternate', reorder_ms: 200 });
    const result = await upload(actor, capsuleId, data, {
      name: 'faulty',
      chunkBytes,
      retry: { baseDelayMs: 5, maxDelayMs: 50 },
    });
    const downloaded = await downloadedBytes(actor, result.memory_id);
    await admin(net, 'faults', {});
    const s = await stats(net);
    assert.ok(s.dropped_before > 0 && s.dropped_after > 0, JSON.stringify(s));
    assert.ok(s.replies_out_of_order > 0, JSON.stringify(s));
    assert.ok(sameBytes(downloaded, data));
    // Retried chunks were sent again, yet the canister holds each once.
    assert.ok(result.chunkCalls > 61, `chunk calls ${result.chunkCalls}`);
    assert.equal(new Set(newlyStored).size, newlyStored.length, 'a chunk newly stored twice');
    const canister = await actor.stats();
    // Whole 4 KiB blocks, once: a chunk stored twice would count again.
    const charged = BigInt(Math.ceil(data.length / 4096) * 4096);
    assert.equal(canister.stored_bytes, charged);
    assert.equal(canister.caller.stored_bytes, charged);
    assert.equal(canister.reserved_bytes, 0n);
    assert.equal(canister.memories, 1n);
  });

  test("a reply lost after execution: the agent resends the same request, which runs once", async () => {
    const { actor, capsuleId } = await setup();
    const chunkBytes = 16 * 1024;
    const data = testBytes(12 * chunkBytes, 23);
    await admin(net, 'faults', { drop_every: 3, drop_point: 'after' });
    const result = await upload(actor, capsuleId, data, { chunkBytes, inFlight: 1 });
    await admin(net, 'faults', {});
    const s = await stats(net);
    assert.ok(s.dropped_after > 0, JSON.stringify(s));
    // The client saw no failure: every resend was the agent's.
    assert.equal(result.chunkCalls, 12);
    assert.ok(s.calls.uploads_put_chunk! > 12, JSON.stringify(s));
    assert.equal(s.executed.uploads_put_chunk, 12, 'a resent request ran again');
    assert.ok(sameBytes(await downloadedBytes(actor, result.memory_id), data));
  });

  test('an upgrade mid-upload: the upload carries on and finishes', async () => {
    const { canister, actor, capsuleId } = await setup();
    const chunkBytes = 64 * 1024;
    const data = testBytes(30 * chunkBytes, 11);
    let upgraded: Promise<unknown> | undefined;
    const result = await upload(actor, capsuleId, data, {
      chunkBytes,
      inFlight: 4,
      onProgress: (p) => {
        if (!upgraded && p.confirmedBytes >= data.length / 2) upgraded = admin(net, `upgrade/${canister}`);
      },
    });
    await upgraded;
    assert.equal((await stats(net)).upgrades, 1);
    assert.ok(sameBytes(await downloadedBytes(actor, result.memory_id), data));
  });

  test('abort stops the upload and aborts the session', async () => {
    const { actor, capsuleId } = await setup();
    const controller = new AbortController();
    const data = testBytes(20 * 65536, 13);
    let sessionId: bigint | undefined;
    await assert.rejects(
      upload(actor, capsuleId, data, {
        chunkBytes: 65536,
        inFlight: 2,
        signal: controller.signal,
        onSession: (s) => (sessionId = s.session_id),
        onProgress: (p) => p.confirmedBytes >= 4 * 65536 && controller.abort(),
      }),
      (e: unknown) => e instanceof UploadAborted && e.sessionId === sessionId,
    );
    assert.ok(sessionId !== undefined);
    const { status } = await sessionStatus(actor, sessionId);
    assert.equal(status.status, SessionStatus.Aborted);
    assert.ok(status.received_chunks < 20);
    assert.deepEqual(await resumableUploads(actor), []);
    // The aborted session's key is spent: the same file starts afresh.
    const again = await upload(actor, capsuleId, data, { chunkBytes: 65536 });
    assert.notEqual(again.sessionId, sessionId);
    assert.ok(sameBytes(await downloadedBytes(actor, again.memory_id), data));
  });

  test('download detects a corrupted range', async () => {
    const { actor, capsuleId } = await setup();
    const data = testBytes(5000, 17);
    const result = await upload(actor, capsuleId, data, { chunkBytes: 1000 });
    await admin(net, 'faults', { corrupt_reads: true });
    try {
      await assert.rejects(download(actor, result.memory_id, { rangeBytes: 1000 }), (e: unknown) => {
        assert.ok(e instanceof DownloadCorrupted);
        assert.deepEqual(e.expected, sha256(data));
        return true;
      });
    } finally {
      await admin(net, 'faults', {});
    }
    assert.ok((await stats(net)).corrupted_reads > 0);
  });
});
