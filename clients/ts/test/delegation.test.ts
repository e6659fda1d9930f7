// Uploads signed by a delegation, as Internet Identity gives one: a session
// key (Ed25519) that the user's key delegated to, until an expiry. The
// local network checks the chain as the IC does.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DelegationChain, DelegationIdentity, Ed25519KeyIdentity } from '@icp-sdk/core/identity';
import { DelegationExpired, MAX_CHUNK_BYTES, download, resumableUploads, upload } from '../src/index';
import {
  type NetworkProcess,
  actorFor,
  admin,
  freshCanister,
  methodOf,
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

const MINUTE_MS = 60_000;
/** The largest request the IC takes on an application subnet. */
const INGRESS_LIMIT = 2 * 1024 * 1024;

/** How far the network's clock was moved ahead of this process's. */
let advancedMs = 0;

async function advance(ms: number) {
  await admin(net, `advance_time/${ms / 1000}`);
  advancedMs += ms;
}

/** A session key delegated from `user` until `minutes` from the network's now. */
async function signIn(user: Ed25519KeyIdentity, minutes: number): Promise<DelegationIdentity> {
  const session = Ed25519KeyIdentity.generate();
  const expiration = new Date(Date.now() + advancedMs + minutes * MINUTE_MS);
  const chain = await DelegationChain.create(user, session.getPublicKey(), expiration);
  return DelegationIdentity.fromDelegation(session, chain);
}

test('a delegation that expires mid-upload: a typed error, then a fresh one resumes with only the missing chunks', async () => {
  const canister = await freshCanister(net);
  const user = Ed25519KeyIdentity.generate();
  // The delegation ends two minutes from now on the network's clock.
  const first = actorFor(net, canister, { identity: await signIn(user, 2) });
  const created = await first.capsules_create('family');
  assert.equal(created.__kind__, 'Ok');
  const capsuleId = (created as { Ok: { capsule_id: bigint } }).Ok.capsule_id;

  const chunkBytes = 64 * 1024;
  const chunks = 30;
  const data = testBytes(chunks * chunkBytes - 100, 31);
  // A third of the way in, the network's clock moves three minutes on:
  // past the delegation's expiry, not past the requests' own (the agent
  // sets those five minutes ahead; a jump beyond that would leave the
  // agent unable to sync its clock, as against a replica whose clock ran
  // away).
  let expired: Promise<void> | undefined;
  await assert.rejects(
    upload(first, capsuleId, data, {
      name: 'video.webm',
      chunkBytes,
      inFlight: 2,
      onProgress: (p) => {
        if (!expired && p.confirmedBytes >= 10 * chunkBytes) expired = advance(3 * MINUTE_MS);
      },
    }),
    (e: unknown) => {
      assert.ok(e instanceof DelegationExpired, `not a DelegationExpired: ${String(e)}`);
      assert.match(e.message, /sign in again/);
      return true;
    },
  );
  await expired;

  // Signed in again: the same user, a new session key.
  const again = actorFor(net, canister, { identity: await signIn(user, 10) });
  const open = await resumableUploads(again);
  assert.equal(open.length, 1, 'the interrupted upload is found under the same principal');
  const stored = open[0]!.received_chunks;
  assert.ok(stored >= 10 && stored < chunks, `stored ${stored}`);
  await admin(net, 'stats/reset');
  const result = await upload(again, capsuleId, data, { name: 'video.webm', chunkBytes });
  assert.equal(result.resumedChunks, stored);
  assert.equal((await stats(net)).executed.uploads_put_chunk, chunks - stored, 'only the missing chunks are sent');
  const { blob } = await download(again, result.memory_id);
  assert.ok(sameBytes(new Uint8Array(await blob.arrayBuffer()), data));
});

test('the largest request: a full chunk, signed through a delegation, fits the 2 MiB ingress limit', async () => {
  const canister = await freshCanister(net);
  let largest = 0;
  const measuring = (async (input: RequestInfo | URL, init?: RequestInit) => {
    if (methodOf(input, init) === 'uploads_put_chunk') {
      largest = Math.max(largest, (init!.body as Uint8Array).byteLength);
    }
    return fetch(input, init);
  }) as typeof fetch;
  const actor = actorFor(net, canister, { identity: await signIn(Ed25519KeyIdentity.generate(), 10), fetch: measuring });
  const created = await actor.capsules_create('big');
  assert.equal(created.__kind__, 'Ok');
  const capsuleId = (created as { Ok: { capsule_id: bigint } }).Ok.capsule_id;
  const data = testBytes(MAX_CHUNK_BYTES, 99);
  const result = await upload(actor, capsuleId, data, { name: 'one-full-chunk.bin' });
  assert.equal(result.chunkCalls, 1);
  assert.ok(largest > MAX_CHUNK_BYTES, `measured ${largest}`);
  assert.ok(largest <= INGRESS_LIMIT, `a ${largest}-byte request is over the limit`);
  console.log(
    `largest request: ${largest} bytes for a ${MAX_CHUNK_BYTES}-byte chunk with signature and delegation; ` +
      `${INGRESS_LIMIT - largest} bytes below the 2 MiB limit`,
  );
});
