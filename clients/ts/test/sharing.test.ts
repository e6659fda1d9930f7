// Share links through the client: the URL a dapp hands out, fetched from
// the local HTTP gateway (which serves the network's default canister),
// revoked, listed, expiring, and the canister's `ShareError`s typed.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { RejectError } from '@icp-sdk/core/agent';
import {
  SHARE_ERROR_HANDLING,
  ShareFailed,
  share,
  shareUrl,
  shares,
  unshare,
  upload,
  type ShareErrorKind,
  type UploadActor,
} from '../src/index';
import {
  type NetworkProcess,
  actorFor,
  freshCanister,
  methodOf,
  newIdentity,
  sameBytes,
  startNetwork,
  testBytes,
} from './support';

let net: NetworkProcess;
before(async () => {
  net = await startNetwork();
});
after(() => net.stop());

/** A signed-in user's actor on `canister`, a capsule of theirs and one memory in it. */
async function memoryOn(canister: string, data: Uint8Array, options: { fetch?: typeof fetch; retryTimes?: number } = {}) {
  const identity = newIdentity();
  const actor = actorFor(net, canister, { identity, ...options });
  const created = await actor.capsules_create('shared');
  assert.equal(created.__kind__, 'Ok');
  const capsuleId = (created as { Ok: { capsule_id: bigint } }).Ok.capsule_id;
  const memory = await upload(actor, capsuleId, data, { name: 'photo.bin', mimeType: 'application/octet-stream' });
  return { identity, actor, capsuleId, memoryId: memory.memory_id };
}

function failsWith(kind: ShareErrorKind, method: string) {
  return (e: unknown) => {
    assert.ok(e instanceof ShareFailed, `not a ShareFailed: ${String(e)}`);
    assert.equal(e.kind, kind, e.message);
    assert.equal(e.error.__kind__, kind);
    assert.equal(e.method, method);
    return true;
  };
}

test('a shared link, fetched from the gateway, answers 200 with the bytes, and 404 once unshared', async () => {
  // The gateway serves the default canister only: the test uses it.
  const data = testBytes(3 * 1024 * 1024 + 5, 61);
  const { actor, memoryId } = await memoryOn(net.canister, data);
  const url = await share(actor, memoryId, { gateway: net.gateway });
  assert.ok(url.startsWith(`${net.gateway}/s/${memoryId}/`), url);

  const links = await shares(actor, memoryId);
  assert.equal(links.length, 1);
  const [link] = links;
  assert.equal(shareUrl(net.gateway, link!), url);
  assert.equal(link!.memory_id, memoryId);
  assert.equal(link!.expires_at, undefined);
  assert.equal(link!.ready, true, 'a 3 MB memory is certified by the share call itself');

  const served = await fetch(url);
  assert.equal(served.status, 200);
  assert.ok(sameBytes(new Uint8Array(await served.arrayBuffer()), data), 'the gateway served other bytes');

  await unshare(actor, link!.link_id);
  const revoked = await fetch(url);
  await revoked.arrayBuffer();
  assert.equal(revoked.status, 404);
  assert.deepEqual(await shares(actor, memoryId), []);
});

test('expiresAt: the link carries it in nanoseconds; one in the past is a typed InvalidArgument', async () => {
  const { actor, memoryId } = await memoryOn(await freshCanister(net), testBytes(1000, 3));
  const expiresAt = new Date(Date.now() + 3_600_000);
  const url = await share(actor, memoryId, { gateway: 'https://example.icp0.io/', expiresAt });
  assert.match(url, new RegExp(`^https://example\\.icp0\\.io/s/${memoryId}/\\d+/`));
  const [link] = await shares(actor, memoryId);
  assert.equal(link!.expires_at, BigInt(expiresAt.getTime()) * 1_000_000n);
  await assert.rejects(
    share(actor, memoryId, { gateway: net.gateway, expiresAt: new Date(Date.now() - 60_000) }),
    failsWith('InvalidArgument', 'memories_share'),
  );
  await assert.rejects(share(actor, memoryId, { gateway: net.gateway, expiresAt: new Date(NaN) }), RangeError);
  await assert.rejects(share(actor, memoryId, { gateway: 'not a url' }), TypeError);
  assert.equal((await shares(actor, memoryId)).length, 1, 'refused shares made no link');
});

test('ShareFailed: MemoryNotFound, NotAuthorized, LinkNotFound; an anonymous caller is rejected', async () => {
  const canister = await freshCanister(net);
  const { actor, memoryId } = await memoryOn(canister, testBytes(10, 4));
  await assert.rejects(share(actor, 4242n, { gateway: net.gateway }), failsWith('MemoryNotFound', 'memories_share'));
  const stranger = actorFor(net, canister, { identity: newIdentity() });
  await assert.rejects(share(stranger, memoryId, { gateway: net.gateway }), failsWith('NotAuthorized', 'memories_share'));
  await assert.rejects(shares(stranger, memoryId), failsWith('NotAuthorized', 'memories_shares'));
  await assert.rejects(unshare(actor, 999_999n), failsWith('LinkNotFound', 'memories_unshare'));
  const anonymous = actorFor(net, canister);
  // As for uploads: refused before it runs, the agent's `RejectError`.
  await assert.rejects(share(anonymous, memoryId, { gateway: net.gateway }), (e: unknown) => e instanceof RejectError);
  // Every case the canister can answer has its place in the table.
  assert.deepEqual(
    Object.entries(SHARE_ERROR_HANDLING).filter(([, how]) => how === 'retried').map(([kind]) => kind),
    ['RandomnessUnavailable'],
  );
});

test('RandomnessUnavailable is asked again; a transport failure is not (a second request would make a second link)', async () => {
  let sends = 0;
  let failing = false;
  const counting = (async (input: RequestInfo | URL, init?: RequestInit) => {
    if (methodOf(input, init) === 'memories_share') {
      sends++;
      if (failing) throw new TypeError('fetch failed');
    }
    return fetch(input, init);
  }) as typeof fetch;
  const { actor, memoryId } = await memoryOn(await freshCanister(net), testBytes(100, 5), { fetch: counting, retryTimes: 0 });

  // The canister's answer when `raw_rand` failed, twice, then the real call.
  const real = actor.memories_share.bind(actor);
  let answers = 0;
  (actor as UploadActor).memories_share = async (id, expiresAt) => {
    if (++answers <= 2) {
      return { __kind__: 'Err', Err: { __kind__: 'RandomnessUnavailable', RandomnessUnavailable: { reason: 'raw_rand failed' } } };
    }
    return real(id, expiresAt);
  };
  const url = await share(actor, memoryId, { gateway: net.gateway, retry: { baseDelayMs: 1 } });
  assert.equal(answers, 3);
  assert.equal(sends, 1);
  assert.equal((await shares(actor, memoryId)).length, 1);
  assert.ok(url.includes(`/s/${memoryId}/`));

  failing = true;
  sends = 0;
  await assert.rejects(share(actor, memoryId, { gateway: net.gateway }), (e: unknown) => !(e instanceof ShareFailed));
  assert.equal(sends, 1, 'memories_share was sent again after a transport failure');
});

test('unshare after a lost reply: the retry finds the link gone and counts it done', async () => {
  let drop = false;
  let unshareSends = 0;
  const losing = (async (input: RequestInfo | URL, init?: RequestInit) => {
    if (methodOf(input, init) === 'memories_unshare') unshareSends++;
    const reply = await fetch(input, init);
    // The call ran; its reply is lost on the way back.
    if (drop && methodOf(input, init) === 'memories_unshare') {
      drop = false;
      throw new TypeError('fetch failed: connection reset');
    }
    return reply;
  }) as typeof fetch;
  const { actor, memoryId } = await memoryOn(await freshCanister(net), testBytes(100, 6), { fetch: losing, retryTimes: 0 });
  await share(actor, memoryId, { gateway: net.gateway });
  const [link] = await shares(actor, memoryId);
  drop = true;
  await unshare(actor, link!.link_id, { retry: { baseDelayMs: 1 } });
  assert.equal(drop, false, 'the reply was not dropped');
  assert.equal(unshareSends, 2, 'sent once, lost, sent again: LinkNotFound, taken as done');
  assert.deepEqual(await shares(actor, memoryId), []);
});
