// `upload(..., { thumbnail })`: the thumbnail goes with `uploads_begin` and
// comes back with the memory's record.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { UploadFailed, upload } from '../src/index';
import { type NetworkProcess, actorFor, freshCanister, newIdentity, startNetwork, testBytes } from './support';

let net: NetworkProcess;
before(async () => {
  net = await startNetwork();
});
after(() => net.stop());

/** The smallest bytes the canister takes as a JPEG: its magic, then anything. */
const jpeg = Uint8Array.from([0xff, 0xd8, 0xff, 0xe0, ...testBytes(500, 3)]);

async function capsule() {
  const actor = actorFor(net, await freshCanister(net), { identity: newIdentity() });
  const created = await actor.capsules_create('thumbs');
  assert.equal(created.__kind__, 'Ok');
  return { actor, capsuleId: (created as { Ok: { capsule_id: bigint } }).Ok.capsule_id };
}

test('a thumbnail given to upload is stored with the memory', async () => {
  const { actor, capsuleId } = await capsule();
  const memory = await upload(actor, capsuleId, testBytes(3000, 1), {
    name: 'a.jpg',
    mimeType: 'image/jpeg',
    thumbnail: { mime_type: 'image/jpeg', bytes: jpeg },
  });
  const record = await actor.memories_get(memory.memory_id);
  assert.equal(record.__kind__, 'Ok');
  const thumbnail = (record as { Ok: { thumbnail?: { mime_type: string; bytes: Uint8Array } } }).Ok.thumbnail;
  assert.equal(thumbnail?.mime_type, 'image/jpeg');
  assert.deepEqual(thumbnail?.bytes, jpeg);
});

test('thumbnail: true outside a browser makes none, and the upload goes on', async () => {
  const { actor, capsuleId } = await capsule();
  const memory = await upload(actor, capsuleId, new Blob([testBytes(2000, 2) as Uint8Array<ArrayBuffer>], { type: 'image/png' }), {
    thumbnail: true,
  });
  const record = await actor.memories_get(memory.memory_id);
  assert.equal(record.__kind__ === 'Ok' && record.Ok.thumbnail, undefined);
});

test('a thumbnail that is not a JPEG or WebP is refused before anything is sent', async () => {
  const { actor, capsuleId } = await capsule();
  await assert.rejects(
    upload(actor, capsuleId, testBytes(100, 4), { thumbnail: { mime_type: 'image/jpeg', bytes: testBytes(100, 5) } }),
    (e: unknown) => e instanceof UploadFailed && e.method === 'uploads_begin',
  );
});
