// SHA-256 in WebAssembly (hash-wasm): incremental, which WebCrypto is not,
// and about twice as fast as pure JavaScript, so the client hashes faster
// than a subnet takes ingress (see bench/upload-1gib.ts).

import { createSHA256 } from 'hash-wasm';

export interface Sha256 {
  update(bytes: Uint8Array): void;
  digest(): Uint8Array;
}

export async function newSha256(): Promise<Sha256> {
  const hasher = await createSHA256();
  hasher.init();
  return {
    update: (bytes) => void hasher.update(bytes),
    digest: () => hasher.digest('binary'),
  };
}

export async function sha256(bytes: Uint8Array): Promise<Uint8Array> {
  const hasher = await newSha256();
  hasher.update(bytes);
  return hasher.digest();
}
