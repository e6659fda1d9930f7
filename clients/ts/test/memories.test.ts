// A capsule's memories through the client: every page of `memories_list`
// walked by an async iterator, and deleting a memory (its links with it).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ShareFailed, UploadFailed, deleteMemory, download, listMemories, share, shares, upload } from '../src/index';
import {
  type NetworkProcess,
  actorFor,
  admin,
  freshCanister,
  newIdentity,
  startNetwork,
  stats,
  testBytes,
} from './support';

let net: NetworkProcess;
before(async () => {
  net = await startNetwork();
});
after(() => net.stop());

async function setup() {
  const canister = await freshCanister(net);
  const identity = newIdentity();
  const actor = actorFor(net, canister, { identity });
  const created = await actor.capsules_create('album');
  assert.equal(created.__kind__, 'Ok');
  const capsuleId = (created as { Ok: { capsule_id: bigint } }).Ok.capsule_id;
  return { canister, actor, capsuleId };
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

test('listMemories walks every page, oldest first, one query a page', async () => {
  const { actor, capsuleId } = await setup();
  const made: bigint[] = [];
  for (let i = 0; i < 5; i++) {
    made.push((await upload(actor, capsuleId, testBytes(100 + i, i + 1), { name: `m${i}` })).memory_id);
  }
  await admin(net, 'stats/reset');
  const all = await collect(listMemories(actor, capsuleId, { pageSize: 2 }));
  assert.deepEqual(
    all.map((m) => m.memory_id),
    made,
  );
  assert.deepEqual(
    all.map((m) => m.name),
    ['m0', 'm1', 'm2', 'm3', 'm4'],
  );
  assert.equal((await stats(net)).calls.memories_list, 3);

  await admin(net, 'stats/reset');
  assert.equal((await collect(listMemories(actor, capsuleId))).length, 5);
  assert.equal((await stats(net)).calls.memories_list, 1, 'the default page holds five');
});

test('listMemories: stopping early asks for no more pages; an empty capsule yields nothing', async () => {
  const { actor, capsuleId } = await setup();
  for (let i = 0; i < 3; i++) await upload(actor, capsuleId, testBytes(10, i + 9), { name: `n${i}` });
  await admin(net, 'stats/reset');
  for await (const memory of listMemories(actor, capsuleId, { pageSize: 1 })) {
    assert.equal(memory.name, 'n0');
    break;
  }
  assert.equal((await stats(net)).calls.memories_list, 1);
  const created = await actor.capsules_create('empty');
  assert.equal(created.__kind__, 'Ok');
  assert.deepEqual(await collect(listMemories(actor, (created as { Ok: { capsule_id: bigint } }).Ok.capsule_id)), []);
});

test('listMemories: typed errors, and a page size out of range', async () => {
  const { canister, actor, capsuleId } = await setup();
  await assert.rejects(collect(listMemories(actor, 777n)), (e: unknown) => e instanceof UploadFailed && e.kind === 'CapsuleNotFound');
  const stranger = actorFor(net, canister, { identity: newIdentity() });
  await assert.rejects(collect(listMemories(stranger, capsuleId)), (e: unknown) => e instanceof UploadFailed && e.kind === 'NotAuthorized');
  await assert.rejects(collect(listMemories(actor, capsuleId, { pageSize: 0 })), RangeError);
  await assert.rejects(collect(listMemories(actor, capsuleId, { pageSize: 1001 })), RangeError);
});

test('deleteMemory: gone from the list, unreadable, its links gone; deleting again is MemoryNotFound', async () => {
  const { canister, actor, capsuleId } = await setup();
  const kept = await upload(actor, capsuleId, testBytes(2000, 1), { name: 'kept' });
  const doomed = await upload(actor, capsuleId, testBytes(3000, 2), { name: 'doomed' });
  await share(actor, doomed.memory_id, { gateway: net.gateway });
  assert.equal((await shares(actor, doomed.memory_id)).length, 1);

  const stranger = actorFor(net, canister, { identity: newIdentity() });
  await assert.rejects(deleteMemory(stranger, doomed.memory_id), (e: unknown) => e instanceof UploadFailed && e.kind === 'NotAuthorized');

  const before = await actor.stats();
  await deleteMemory(actor, doomed.memory_id);
  assert.deepEqual(
    (await collect(listMemories(actor, capsuleId))).map((m) => m.memory_id),
    [kept.memory_id],
  );
  await assert.rejects(download(actor, doomed.memory_id), (e: unknown) => e instanceof UploadFailed && e.kind === 'MemoryNotFound');
  await assert.rejects(shares(actor, doomed.memory_id), (e: unknown) => e instanceof ShareFailed && e.kind === 'MemoryNotFound');
  assert.ok((await actor.stats()).stored_bytes < before.stored_bytes, 'its space was freed');
  await assert.rejects(
    deleteMemory(actor, doomed.memory_id),
    (e: unknown) => e instanceof UploadFailed && e.kind === 'MemoryNotFound' && e.method === 'memories_delete',
  );
});
