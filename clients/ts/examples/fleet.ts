import { HttpAgent, type Identity } from '@icp-sdk/core/agent';
import { IndexClient, PlacementFailed, UploadFailed, type MemoryRef } from '../src/index';

/** Creates a capsule through the index, uploads `file` where it says, lists the capsule and shares the memory. */
export async function uploadThroughIndex(host: string, indexId: string, gateway: string, identity: Identity, file: Blob) {
  const agent = await HttpAgent.create({ host, identity, shouldFetchRootKey: !host.includes('icp-api.io') });
  const fleet = new IndexClient({ agent, index: indexId, gateway }); // gateway: 'https://icp0.io' on mainnet
  try {
    const { capsuleId, uploadBucket } = await fleet.createCapsule('family'); // placed on a bucket by the index
    console.log(`capsule ${capsuleId} lives on ${uploadBucket.toText()}`);
    // Located once (capsules_locate, an update call); a sealed bucket moves the upload on, same idempotency key.
    const memory = await fleet.upload(capsuleId, file, { onProgress: (p) => console.log(p.confirmedBytes) });
    const ref: MemoryRef = memory.ref; // { bucket, memoryId }: memory ids are a bucket's own
    const { blob } = await fleet.download(ref); // SHA-256 checked, from the memory's bucket
    for await (const m of fleet.listMemories(capsuleId)) console.log(m.name, m.bucket.toText()); // oldest bucket first
    const link = await fleet.share(ref); // https://<bucket>.icp0.io/s/...: served by that bucket
    return { blob, link };
  } catch (e) {
    if (e instanceof PlacementFailed && e.kind === 'NoOpenBucket') console.warn('the index is making room: try again soon');
    if (e instanceof UploadFailed) console.warn(e.kind);
    throw e;
  }
}
