// The index-aware client against the local network started with a fleet
// (`upload-bridge --subnets 3 --index-wasm ... --bucket-wasm ...`): the
// index on the root subnet and its buckets on the others, the real
// release `.wasm`s behind the IC's HTTP interface, the real `HttpAgent`.
// Capsules are created through the index, their memories uploaded to and
// read from the bucket it names; a sealed bucket makes the next upload
// move to the bucket the index continues the capsule in, under the same
// idempotency key, and listing covers both.

import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, test, type TestContext } from 'node:test';
import type { Principal } from '@icp-sdk/core/principal';
import {
  IndexBucketState,
  IndexClient,
  UploadFailed,
  createIndexActor,
  upload,
  type UploadActor,
} from '../src/index';
import {
  type FleetNetwork,
  agentFor,
  fleetUnavailable,
  methodOf,
  newIdentity,
  sameBytes,
  startFleetNetwork,
  testBytes,
} from './support';
import type { Identity } from '@icp-sdk/core/agent';

const unavailable = fleetUnavailable();
let net: FleetNetwork | undefined;
before(async () => {
  if (unavailable === undefined) net = await startFleetNetwork();
});
after(() => net?.stop());

/** A test that needs the fleet: skipped, saying why, when this machine's bridge cannot start one. */
function fleetTest(name: string, body: (net: FleetNetwork, t: TestContext) => Promise<void>): void {
  test(name, { timeout: 240_000 }, async (t) => {
    if (unavailable !== undefined || net === undefined) {
      // CI builds everything the fleet needs: a skip there is a failure.
      if (process.env.REQUIRE_FLEET) throw new Error(`the fleet is required (REQUIRE_FLEET): ${unavailable ?? 'it did not start'}`);
      t.skip(`needs upload-bridge --index-wasm: ${unavailable ?? 'the fleet did not start'}`);
      return;
    }
    await body(net, t);
  });
}

interface Sent {
  canister: string;
  method: string;
  kind: 'call' | 'query';
}

/** Wraps `fetch`, recording each canister call: which canister, which method, update or query. */
function recording(inner: typeof fetch = fetch) {
  const sent: Sent[] = [];
  const wrapped = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = String(input instanceof Request ? input.url : input);
    const m = /\/canister\/([^/]+)\/(call|query)$/.exec(url);
    const method = methodOf(input, init);
    if (m && method) sent.push({ canister: m[1]!, method, kind: m[2] as 'call' | 'query' });
    return inner(input, init);
  }) as typeof fetch;
  return { sent, fetch: wrapped };
}

/** A signed-in user's client of the fleet's index, its calls recorded. */
function clientFor(net: FleetNetwork, identity: Identity, inner?: typeof fetch) {
  const traffic = recording(inner);
  const agent = agentFor(net, { identity, fetch: traffic.fetch });
  return { client: new IndexClient({ agent, index: net.index, gateway: net.gateway }), sent: traffic.sent };
}

/** The index as its controller (the bridge's test key) calls it. */
function indexAdmin(net: FleetNetwork) {
  return createIndexActor(net.index, { agent: agentFor(net, { identity: net.fleetController }) });
}

async function bytesOf(blob: Blob): Promise<Uint8Array> {
  return new Uint8Array(await blob.arrayBuffer());
}

const text = (p: Principal | string) => (typeof p === 'string' ? p : p.toText());

/** GET through the local gateway; a `<bucket>.localhost` host is sent to loopback with that Host header. */
function gatewayGet(url: string): Promise<{ status: number; body: Uint8Array }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: u.port, path: `${u.pathname}${u.search}`, headers: { host: u.host } },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: new Uint8Array(Buffer.concat(parts)) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('capsules through the index', () => {
  fleetTest('created through the index, uploaded to and read from the bucket it names', async (net) => {
    const identity = newIdentity();
    const { client, sent } = clientFor(net, identity);
    const { Ok: rows } = (await indexAdmin(net).admin_buckets(null, 100)) as { Ok: { bucket: Principal; subnet: Principal }[] };
    const buckets = new Set(rows.map((r) => r.bucket.toText()));
    assert.ok(buckets.size >= 2, `the fleet has buckets: ${[...buckets]}`);
    for (const b of net.buckets) assert.ok(buckets.has(b), `${b} is one of the index's buckets`);

    const locations = [];
    for (let i = 0; i < 4; i++) locations.push(await client.createCapsule(`capsule ${i}`));
    for (const l of locations) {
      assert.equal(l.buckets.length, 1);
      assert.equal(text(l.uploadBucket), text(l.buckets[0]!));
      assert.ok(buckets.has(text(l.uploadBucket)), `capsule ${l.capsuleId} is on a bucket of the index`);
      assert.equal(text(l.owner), identity.getPrincipal().toText());
    }
    const [first] = locations;
    const located = await client.locate(first!.capsuleId);
    assert.equal(text(located.uploadBucket), text(first!.uploadBucket));
    assert.equal(sent.filter((s) => s.method === 'capsules_locate').length, 0, 'capsules_create gave the location: cached');

    // Another client (a reloaded page) locates it once, by an update call.
    const other = clientFor(net, identity);
    await other.client.locate(first!.capsuleId);
    await other.client.locate(first!.capsuleId);
    const locates = other.sent.filter((s) => s.method === 'capsules_locate');
    assert.deepEqual(locates, [{ canister: net.index, method: 'capsules_locate', kind: 'call' }], 'one update call, never a query');

    // 2 chunks of 1.9 MB and 1 byte: every upload call goes to the upload bucket.
    const data = testBytes(1_900_001, 11);
    const before = other.sent.length;
    const result = await other.client.upload(first!.capsuleId, data, { name: 'two chunks.bin' });
    const bucket = text(first!.uploadBucket);
    assert.equal(text(result.bucket), bucket);
    assert.equal(text(result.ref.bucket), bucket);
    assert.equal(result.ref.memoryId, result.memory_id);
    assert.equal(result.relocations, 0);
    const uploadCalls = other.sent.slice(before).filter((s) => s.method.startsWith('uploads_'));
    assert.ok(uploadCalls.length >= 4, JSON.stringify(uploadCalls));
    assert.ok(uploadCalls.every((s) => s.canister === bucket), `all to ${bucket}: ${JSON.stringify(uploadCalls)}`);
    assert.equal(other.sent.slice(before).filter((s) => s.method === 'capsules_locate').length, 0, 'located once');

    const { blob, record } = await client.download(result.ref);
    assert.ok(sameBytes(await bytesOf(blob), data));
    assert.equal(record.name, 'two chunks.bin');
    assert.equal((await client.capsule(first!.capsuleId)).name, 'capsule 0');

    // The index lists them (a query, for showing only).
    const mine = [];
    for await (const l of client.listCapsules()) mine.push(l.capsuleId);
    assert.deepEqual(mine.sort(), locations.map((l) => l.capsuleId).sort());

    // A bucket an index manages creates no capsule itself.
    const direct = await client.bucket(bucket).capsules_create('not here');
    assert.equal(direct.__kind__, 'Err');
    assert.ok(direct.__kind__ === 'Err' && direct.Err.__kind__ === 'ManagedByIndex', JSON.stringify(direct, (_k, v) => (typeof v === 'bigint' ? `${v}` : v)));
    assert.equal(direct.__kind__ === 'Err' && direct.Err.__kind__ === 'ManagedByIndex' && direct.Err.ManagedByIndex.index.toText(), net.index);
  });

  fleetTest('an upload killed half way resumes on its bucket, sending only the missing chunks', async (net) => {
    const identity = newIdentity();
    const { client } = clientFor(net, identity);
    const location = await client.createCapsule('resume');
    const chunkBytes = 64 * 1024;
    const data = testBytes(40 * chunkBytes + 123, 5);
    const chunks = 41;
    // The first run's "process" dies after 20 chunk calls.
    let chunkCalls = 0;
    const dying = (async (input: RequestInfo | URL, init?: RequestInit) => {
      if (methodOf(input, init) === 'uploads_put_chunk' && ++chunkCalls > 20) throw new TypeError('fetch failed: the tab was closed');
      return fetch(input, init);
    }) as typeof fetch;
    const first = clientFor(net, identity, dying);
    await assert.rejects(
      first.client.upload(location.capsuleId, data, { name: 'f', chunkBytes, inFlight: 4, retry: { attempts: 1 } }),
      /transport failed/,
    );

    const again = clientFor(net, identity);
    const bucket = again.client.bucket(location.uploadBucket);
    const [open] = await bucket.uploads_mine();
    assert.equal(open?.received_chunks, 20);
    const result = await again.client.upload(location.capsuleId, data, { name: 'f', chunkBytes });
    assert.equal(result.sessionId, open!.session_id, 'the same session, by the same idempotency key');
    assert.equal(result.resumedChunks, 20);
    assert.equal(again.sent.filter((s) => s.method === 'uploads_put_chunk').length, chunks - 20, 'only the missing chunks');
    assert.equal(text(result.bucket), text(location.uploadBucket));
    assert.ok(sameBytes(await bytesOf((await again.client.download(result.ref)).blob), data));
  });

  fleetTest('a share link is made and served by the memory’s bucket, and its URL names that bucket', async (net) => {
    const { client } = clientFor(net, newIdentity());
    const location = await client.createCapsule('shared');
    const data = testBytes(100_000, 3);
    const result = await client.upload(location.capsuleId, data, { name: 'shared.bin', mimeType: 'application/octet-stream' });
    const bucket = text(result.bucket);
    const url = await client.share(result.ref);
    const port = new URL(net.gateway).port;
    assert.match(url, new RegExp(`^http://${bucket}\\.localhost:${port}/s/${result.memory_id}/\\d+/[^/?]+$`));
    const byQuery = await client.share(result.ref, { gatewayRoute: 'query' });
    assert.match(byQuery, new RegExp(`^http://127\\.0\\.0\\.1:${port}/s/${result.memory_id}/\\d+/[^/?]+\\?canisterId=${bucket}$`));
    // The bucket itself answers the link's path (its `http_request` query,
    // as a gateway asks it), with the memory's bytes.
    const answer = await client.bucket(bucket).http_request({
      url: new URL(url).pathname,
      method: 'GET',
      body: new Uint8Array(),
      headers: [],
      certificate_version: 2,
    });
    assert.equal(answer.status_code, 200, Buffer.from(answer.body).toString().slice(0, 200));
    assert.ok(sameBytes(answer.body, data));
    // No other bucket knows the link.
    const elsewhere = net.buckets.find((b) => b !== bucket);
    if (elsewhere) {
      const other = await client.bucket(elsewhere).http_request({ url: new URL(url).pathname, method: 'GET', body: new Uint8Array(), headers: [], certificate_version: 2 });
      assert.equal(other.status_code, 404);
    }
  });

  fleetTest('a share link of a bucket opens through the local gateway, by host and by ?canisterId=', async (net) => {
    const { client } = clientFor(net, newIdentity());
    const location = await client.createCapsule('shared through the gateway');
    const data = testBytes(100_000, 4);
    const result = await client.upload(location.capsuleId, data, { name: 'shared.bin' });
    for (const route of ['subdomain', 'query'] as const) {
      const url = await client.share(result.ref, { gatewayRoute: route });
      const served = await gatewayGet(url);
      assert.equal(served.status, 200, `${url} answered ${served.status}: ${Buffer.from(served.body).toString().slice(0, 200)}`);
      assert.ok(sameBytes(served.body, data), url);
    }
  });

  fleetTest('a sealed bucket: the next upload moves, under the same key, to the bucket the capsule continues in; listing covers both', async (net) => {
    const identity = newIdentity();
    const begins: { bucket: string; key: string; answer: string }[] = [];
    // Every bucket actor the client makes records its `uploads_begin`s.
    class Recording extends IndexClient {
      readonly #wrapped = new Set<string>();
      override bucket(id: Principal | string) {
        const actor = super.bucket(id);
        const b = text(id);
        if (!this.#wrapped.has(b)) {
          this.#wrapped.add(b);
          const begin = actor.uploads_begin.bind(actor);
          actor.uploads_begin = async (arg) => {
            const answer = await begin(arg);
            begins.push({ bucket: b, key: arg.idempotency_key, answer: answer.__kind__ === 'Ok' ? 'Ok' : answer.Err.__kind__ });
            return answer;
          };
        }
        return actor;
      }
    }
    const traffic = recording();
    const client = new Recording({ agent: agentFor(net, { identity, fetch: traffic.fetch }), index: net.index, gateway: net.gateway });
    const location = await client.createCapsule('full');
    const b1 = text(location.uploadBucket);
    const a = testBytes(300_000, 1);
    const ra = await client.upload(location.capsuleId, a, { name: 'a' });
    assert.equal(text(ra.bucket), b1);

    // An upload in flight on b1 when it is sealed: 20 of 41 chunks.
    const chunkBytes = 64 * 1024;
    const c = testBytes(40 * chunkBytes + 7, 3);
    let chunkCalls = 0;
    const dying = (async (input: RequestInfo | URL, init?: RequestInit) => {
      if (methodOf(input, init) === 'uploads_put_chunk' && ++chunkCalls > 20) throw new TypeError('fetch failed: the tab was closed');
      return fetch(input, init);
    }) as typeof fetch;
    await assert.rejects(
      clientFor(net, identity, dying).client.upload(location.capsuleId, c, { name: 'c', chunkBytes, inFlight: 4, retry: { attempts: 1 } }),
      /transport failed/,
    );

    const admin = indexAdmin(net);
    const sealed = await admin.admin_set_bucket_state(location.uploadBucket, IndexBucketState.Sealed);
    assert.equal(sealed.__kind__, 'Ok', JSON.stringify(sealed));
    try {
      // The client still routes to b1 (cached): sealed, so it locates again
      // and begins under the same key where the index continued the capsule.
      const b = testBytes(200_000, 2);
      begins.length = 0;
      const locatesBefore = traffic.sent.filter((s) => s.method === 'capsules_locate').length;
      const rb = await client.upload(location.capsuleId, b, { name: 'b' });
      const b2 = text(rb.bucket);
      assert.notEqual(b2, b1, 'a new bucket');
      assert.equal(rb.relocations, 1);
      assert.deepEqual(
        begins.map(({ bucket, answer }) => ({ bucket, answer })),
        [
          { bucket: b1, answer: 'BucketSealed' },
          { bucket: b2, answer: 'Ok' },
        ],
      );
      assert.equal(begins[0]!.key, begins[1]!.key, 'the same idempotency key on the new bucket');
      assert.equal(rb.idempotencyKey, begins[0]!.key);
      const relocates = traffic.sent.filter((s) => s.method === 'capsules_locate').slice(locatesBefore);
      assert.deepEqual(relocates.map((s) => s.kind), ['call'], 'relocated by one update call');
      const moved = await client.locate(location.capsuleId);
      assert.deepEqual(moved.buckets.map(text), [b1, b2]);
      assert.equal(text(moved.uploadBucket), b2);

      // b1 takes no new upload, but finishes the one it began: a reloaded
      // page resumes `c` there, sending only its missing chunks.
      await assert.rejects(
        upload(client.bucket(b1) as UploadActor, location.capsuleId, testBytes(10, 9), { name: 'new' }),
        (e: unknown) => e instanceof UploadFailed && e.kind === 'BucketSealed',
      );
      const reloaded = clientFor(net, identity);
      const rc = await reloaded.client.upload(location.capsuleId, c, { name: 'c', chunkBytes });
      assert.equal(text(rc.bucket), b1, 'finished where it began');
      assert.equal(rc.resumedChunks, 20);
      assert.equal(reloaded.sent.filter((s) => s.method === 'uploads_put_chunk').length, 21);
      assert.ok(reloaded.sent.filter((s) => s.method === 'uploads_begin').every((s) => s.canister === b1));

      // Listing: every bucket of the capsule, oldest first.
      const listed = [];
      for await (const m of reloaded.client.listMemories(location.capsuleId)) listed.push(m);
      assert.deepEqual(
        listed.map((m) => [m.name, text(m.bucket)]),
        [
          ['a', b1],
          ['c', b1],
          ['b', b2],
        ],
      );
      for (const [m, bytes] of [[listed[0]!, a], [listed[1]!, c], [listed[2]!, b]] as const) {
        assert.ok(sameBytes(await bytesOf((await reloaded.client.download(m.ref)).blob), bytes), `${m.name} byte-exact`);
      }
      const mine = [];
      for await (const l of reloaded.client.listCapsules()) mine.push(l);
      assert.deepEqual(mine.find((l) => l.capsuleId === location.capsuleId)?.buckets.map(text), [b1, b2]);
    } finally {
      // Reports decide b1's state again, for the tests after this one.
      await admin.admin_set_bucket_state(location.uploadBucket, null);
    }
  });
});
