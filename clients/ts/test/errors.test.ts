// Every user error the client can meet surfaces typed, and is never retried;
// transport failures and `VerificationPending` are.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { RejectError } from '@icp-sdk/core/agent';
import {
  DEFAULT_RETRY,
  UploadFailed,
  backoffMs,
  download,
  upload,
  type UploadErrorKind,
} from '../src/index';
import { type NetworkProcess, actorFor, admin, freshCanister, methodOf, newIdentity, startNetwork, stats, testBytes } from './support';

let net: NetworkProcess;
before(async () => {
  net = await startNetwork();
});
after(() => net.stop());

async function setup() {
  const canister = await freshCanister(net);
  const identity = newIdentity();
  const actor = actorFor(net, canister, { identity });
  const created = await actor.capsules_create('mine');
  assert.equal(created.__kind__, 'Ok');
  await admin(net, 'stats/reset');
  await admin(net, 'faults', {});
  return { canister, identity, actor, capsuleId: (created as { Ok: { capsule_id: bigint } }).Ok.capsule_id };
}

function failsWith(kind: UploadErrorKind) {
  return (e: unknown) => {
    assert.ok(e instanceof UploadFailed, `not an UploadFailed: ${String(e)}`);
    assert.equal(e.kind, kind, e.message);
    assert.equal(e.error.__kind__, kind);
    return true;
  };
}

test('CapsuleNotFound, thrown at once without a retry', async () => {
  const { actor } = await setup();
  await assert.rejects(upload(actor, 999n, testBytes(10)), failsWith('CapsuleNotFound'));
  assert.equal((await stats(net)).calls.uploads_begin, 1);
});

test("NotAuthorized: someone else's capsule", async () => {
  const { canister, capsuleId } = await setup();
  const stranger = actorFor(net, canister, { identity: newIdentity() });
  await assert.rejects(upload(stranger, capsuleId, testBytes(10)), failsWith('NotAuthorized'));
});

test('InvalidArgument: a name longer than the canister takes', async () => {
  const { actor, capsuleId } = await setup();
  await assert.rejects(upload(actor, capsuleId, testBytes(10), { name: 'n'.repeat(2000) }), failsWith('InvalidArgument'));
});

test('QuotaExceeded: a file over the limit the controller set', async () => {
  const { canister, actor, capsuleId } = await setup();
  const admin_ = actorFor(net, canister, { identity: net.controller });
  const { limits } = await admin_.stats();
  const set = await admin_.admin_set_limits({ ...limits, max_file_bytes: 1000n });
  assert.equal(set.__kind__, 'Ok');
  await assert.rejects(upload(actor, capsuleId, testBytes(1001)), (e: unknown) => {
    failsWith('QuotaExceeded')(e);
    const q = (e as UploadFailed).error as Extract<UploadFailed['error'], { __kind__: 'QuotaExceeded' }>;
    assert.equal(q.QuotaExceeded.limit, 1000n);
    assert.equal(q.QuotaExceeded.requested, 1001n);
    return true;
  });
});

test('ChecksumMismatch: a resumed file whose bytes changed under the same identity; the session stays open', async () => {
  const { canister, identity, actor, capsuleId } = await setup();
  // A first run stores chunk 0 of file A, then dies.
  let puts = 0;
  const dying = actorFor(net, canister, {
    identity,
    fetch: (async (input: RequestInfo | URL, init?: RequestInit) => {
      if (methodOf(input, init) === 'uploads_put_chunk' && ++puts > 1) throw new TypeError('fetch failed');
      return fetch(input, init);
    }) as typeof fetch,
  });
  const options = { chunkBytes: 100, inFlight: 1, fileIdentity: 'same', retry: { attempts: 1 } };
  await assert.rejects(upload(dying, capsuleId, testBytes(300, 1), options), /transport failed/);
  // File B claims the same identity: chunk 0 is taken as already there,
  // and the canister's whole-file check catches the difference.
  await assert.rejects(upload(actor, capsuleId, testBytes(300, 2), options), failsWith('ChecksumMismatch'));
  const open = await actor.uploads_mine();
  assert.equal(open.length, 1);
});

test('MemoryNotFound on download', async () => {
  const { actor } = await setup();
  await assert.rejects(download(actor, 4242n), failsWith('MemoryNotFound'));
  assert.equal((await stats(net)).calls.memories_get, 1);
});

test('an anonymous caller is rejected by the canister, not retried', async () => {
  const { canister, capsuleId } = await setup();
  const anonymous = actorFor(net, canister);
  await assert.rejects(upload(anonymous, capsuleId, testBytes(10)), (e: unknown) => e instanceof RejectError);
  assert.equal((await stats(net)).calls.uploads_begin, 1);
});

test('VerificationPending and transport failures are retried, with backoff', async () => {
  const { actor, capsuleId } = await setup();
  // The canister's own answer, replayed: finish says "pending" twice (as
  // it does while hashing catches up), then fails once in transport.
  const finish = actor.uploads_finish.bind(actor);
  let calls = 0;
  actor.uploads_finish = async (arg) => {
    calls++;
    if (calls <= 2) return { __kind__: 'Err', Err: { __kind__: 'VerificationPending', VerificationPending: { hashed_bytes: 0n, total_bytes: arg.byte_len } } };
    if (calls === 3) {
      const failing = actorFor(net, '2vxsx-fae', { fetch: (() => Promise.reject(new TypeError("fetch failed"))) as typeof fetch, retryTimes: 0 });
      await failing.uploads_finish(arg);
    }
    return finish(arg);
  };
  const data = testBytes(5000, 3);
  const result = await upload(actor, capsuleId, data, { chunkBytes: 1000, finishRetry: { baseDelayMs: 1 } });
  assert.equal(calls, 4);
  assert.equal(result.byte_len, 5000n);
});

test('backoff grows, is capped, and is jittered', () => {
  const policy = { ...DEFAULT_RETRY, baseDelayMs: 100, maxDelayMs: 1000 };
  assert.equal(backoffMs(policy, 0, () => 0), 50);
  assert.equal(backoffMs(policy, 0, () => 1), 100);
  assert.equal(backoffMs(policy, 3, () => 1), 800);
  assert.equal(backoffMs(policy, 10, () => 1), 1000);
  assert.equal(backoffMs(policy, 10, () => 0), 500);
});
