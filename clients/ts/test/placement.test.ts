// The index-aware API without a network: `locateCapsule` caches per
// capsule and asks only the update call, `createCapsule` completes a
// pending registration, placement errors are typed, and share links name
// the bucket that serves them. (test/fleet.test.ts runs the same API
// against the local network's index and buckets.)

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Principal } from '@icp-sdk/core/principal';
import {
  PLACEMENT_ERROR_HANDLING,
  PlacementFailed,
  bucketShareUrl,
  createCapsule,
  forgetLocation,
  locateCapsule,
  type IndexActor,
  type IndexTypes,
} from '../src/index';

const BUCKET_A = Principal.fromText('ryjl3-tyaaa-aaaaa-aaaba-cai');
const BUCKET_B = Principal.fromText('r7inp-6aaaa-aaaaa-aaabq-cai');
const OWNER = Principal.fromText('2vxsx-fae');

type LocateResult = Awaited<ReturnType<IndexActor['capsules_locate']>>;

function located(capsuleId: bigint, buckets: Principal[]): LocateResult {
  return {
    __kind__: 'Ok',
    Ok: { capsule_id: capsuleId, owner: OWNER, buckets, upload_bucket: buckets[buckets.length - 1]! },
  };
}

/** An index actor whose `capsules_locate` answers from `answers` in turn, counting calls. */
function fakeIndex(answers: (LocateResult | Error)[], create?: () => Promise<LocateResult>) {
  const calls = { locate: 0, create: 0, mine: 0 };
  const index = {
    async capsules_locate(capsuleId: bigint): Promise<LocateResult> {
      calls.locate++;
      await new Promise((r) => setTimeout(r, 5));
      const next = answers.shift();
      if (next === undefined) throw new Error(`capsules_locate(${capsuleId}): no answer left`);
      if (next instanceof Error) throw next;
      return next;
    },
    async capsules_create(): Promise<LocateResult> {
      calls.create++;
      if (!create) throw new Error('capsules_create: not expected');
      return create();
    },
    async capsules_mine(): Promise<IndexTypes.CapsuleLocation[]> {
      calls.mine++;
      throw new Error('capsules_mine is a query: never used for routing');
    },
  } as unknown as IndexActor;
  return { index, calls };
}

test('locateCapsule asks the update call once per capsule, shares a pending call, and asks again when fresh', async () => {
  const { index, calls } = fakeIndex([located(1n, [BUCKET_A]), located(2n, [BUCKET_B]), located(1n, [BUCKET_A, BUCKET_B])]);
  const [a, again] = await Promise.all([locateCapsule(index, 1n), locateCapsule(index, 1n)]);
  assert.equal(calls.locate, 1, 'two callers at once, one call');
  assert.equal(a, again);
  assert.deepEqual(a, { capsuleId: 1n, owner: OWNER, buckets: [BUCKET_A], uploadBucket: BUCKET_A });
  assert.equal((await locateCapsule(index, 1n)).uploadBucket.toText(), BUCKET_A.toText());
  assert.equal(calls.locate, 1, 'cached');
  assert.equal((await locateCapsule(index, 2n)).uploadBucket.toText(), BUCKET_B.toText());
  assert.equal(calls.locate, 2, 'per capsule');
  const moved = await locateCapsule(index, 1n, { fresh: true });
  assert.deepEqual(moved.buckets.map(String), [BUCKET_A.toText(), BUCKET_B.toText()]);
  assert.equal((await locateCapsule(index, 1n)).uploadBucket.toText(), BUCKET_B.toText(), 'the fresh answer is cached');
  assert.equal(calls.locate, 3);
  assert.equal(calls.mine, 0, 'the capsules_mine query is never asked for a location');
});

test('a failed locate is not cached; RegistrationPending and transport failures are asked again', async () => {
  const pending: LocateResult = { __kind__: 'Err', Err: { __kind__: 'RegistrationPending', RegistrationPending: { capsule_id: 7n } } };
  const notFound: LocateResult = { __kind__: 'Err', Err: { __kind__: 'CapsuleNotFound', CapsuleNotFound: { capsule_id: 7n } } };
  const { index, calls } = fakeIndex([
    notFound,
    pending,
    new TypeError('fetch failed: connection reset'),
    located(7n, [BUCKET_A]),
  ]);
  await assert.rejects(locateCapsule(index, 7n), (e: unknown) => {
    assert.ok(e instanceof PlacementFailed);
    assert.equal(e.kind, 'CapsuleNotFound');
    assert.equal(e.method, 'capsules_locate');
    assert.match(e.message, /CapsuleNotFound \{"capsule_id":"7"\}/);
    return true;
  });
  const location = await locateCapsule(index, 7n, { retry: { baseDelayMs: 1, maxDelayMs: 2 } });
  assert.equal(location.uploadBucket.toText(), BUCKET_A.toText());
  assert.equal(calls.locate, 4, 'not found, then pending and a transport failure asked again');
  forgetLocation(index, 7n);
  await assert.rejects(locateCapsule(index, 7n), /no answer left/, 'forgotten: asked again');
});

test('createCapsule: the location, cached; a pending registration completed by capsules_locate; typed refusals', async () => {
  const created = fakeIndex([], async () => located(3n, [BUCKET_B]));
  const location = await createCapsule(created.index, 'family');
  assert.deepEqual(location, { capsuleId: 3n, owner: OWNER, buckets: [BUCKET_B], uploadBucket: BUCKET_B });
  await locateCapsule(created.index, 3n);
  assert.equal(created.calls.locate, 0, 'the location capsules_create gave is cached');

  const pending = fakeIndex([located(4n, [BUCKET_A])], async () => ({
    __kind__: 'Err',
    Err: { __kind__: 'RegistrationPending', RegistrationPending: { capsule_id: 4n } },
  }));
  assert.equal((await createCapsule(pending.index, 'late')).capsuleId, 4n);
  assert.equal(pending.calls.locate, 1);

  const full = fakeIndex([], async () => ({ __kind__: 'Err', Err: { __kind__: 'NoOpenBucket', NoOpenBucket: { reason: 'creating one' } } }));
  await assert.rejects(createCapsule(full.index, 'x'), (e: unknown) => {
    assert.ok(e instanceof PlacementFailed);
    assert.equal(e.kind, 'NoOpenBucket');
    assert.equal(e.method, 'capsules_create');
    return true;
  });

  const lost = fakeIndex([], async () => {
    throw new TypeError('fetch failed');
  });
  await assert.rejects(createCapsule(lost.index, 'x'), /fetch failed/);
  assert.equal(lost.calls.create, 1, 'not sent again: a second request could make a second capsule');

  const unavailable = fakeIndex([], async () => ({
    __kind__: 'Err',
    Err: { __kind__: 'BucketUnavailable', BucketUnavailable: { bucket: BUCKET_A, reason: 'stopped' } },
  }));
  await assert.rejects(createCapsule(unavailable.index, 'x'), new RegExp(`BucketUnavailable \\{"bucket":"${BUCKET_A.toText()}"`));
});

test('every PlacementError case is placed', () => {
  assert.deepEqual(
    Object.keys(PLACEMENT_ERROR_HANDLING).sort(),
    [
      'AnonymousCaller',
      'BucketUnavailable',
      'CapsuleNotFound',
      'CapsuleSpansTooManyBuckets',
      'CapsulesPerOwnerExceeded',
      'InvalidArgument',
      'NoOpenBucket',
      'NotAuthorized',
      'RegistrationPending',
    ],
  );
});

test('share links name the bucket that serves them', () => {
  const b = BUCKET_B.toText();
  const path = '/s/5/9/abc_DEF-123';
  assert.equal(bucketShareUrl('http://127.0.0.1:4945', BUCKET_B, path), `http://${b}.localhost:4945${path}`);
  assert.equal(bucketShareUrl('http://localhost:4945/', b, path), `http://${b}.localhost:4945${path}`);
  assert.equal(bucketShareUrl('http://127.0.0.1:4945', b, path, 'query'), `http://127.0.0.1:4945${path}?canisterId=${b}`);
  assert.equal(bucketShareUrl('https://icp0.io', b, path), `https://${b}.icp0.io${path}`);
  assert.equal(bucketShareUrl(`https://${BUCKET_A.toText()}.icp0.io`, b, path), `https://${b}.icp0.io${path}`);
  assert.equal(bucketShareUrl('https://{canister}.raw.icp0.io', b, path), `https://${b}.raw.icp0.io${path}`);
  assert.throws(() => bucketShareUrl('not a url', b, path), TypeError);
});
