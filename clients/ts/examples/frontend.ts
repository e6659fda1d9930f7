import { HttpAgent, type Identity } from '@icp-sdk/core/agent';
import { createActor, download, upload, DelegationExpired, UploadFailed, type UploadProgress } from '../src/index';

/** Uploads `file` into a new capsule and reads it back, SHA-256 checked. */
export async function uploadAndReadBack(
  host: string, // 'https://icp-api.io' on mainnet, the local network's URL locally
  canisterId: string,
  identity: Identity, // e.g. `authClient.getIdentity()` from Internet Identity
  file: Blob,
  onProgress: (p: UploadProgress) => void,
): Promise<Blob> {
  const agent = await HttpAgent.create({ host, identity, shouldFetchRootKey: !host.includes('icp-api.io') });
  const actor = createActor(canisterId, { agent });
  const capsule = await actor.capsules_create('family');
  if (capsule.__kind__ === 'Err') throw new UploadFailed(capsule.Err, 'capsules_create');
  try {
    const memory = await upload(actor, capsule.Ok.capsule_id, file, { onProgress });
    const { blob } = await download(actor, memory.memory_id); // SHA-256 checked
    return blob;
  } catch (e) {
    if (e instanceof UploadFailed && e.error.__kind__ === 'QuotaExceeded') console.warn('over quota', e.error.QuotaExceeded);
    if (e instanceof DelegationExpired) console.warn('signed out: sign in again, then upload the same file to resume');
    throw e;
  }
}
