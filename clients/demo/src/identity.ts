// A locally generated identity kept in the browser's storage: enough to own
// capsules on a local bridge or replica. On mainnet a dapp signs in with
// Internet Identity instead (`AuthClient` from `@icp-sdk/auth`) and passes
// that identity to `HttpAgent`; the upload client is unchanged.

import { Ed25519KeyIdentity } from '@icp-sdk/core/identity';

export type KeyValueStorage = Pick<Storage, 'getItem' | 'setItem'>;

export function loadOrCreateIdentity(storage: KeyValueStorage, key = 'upload-client-identity'): Ed25519KeyIdentity {
  const saved = storage.getItem(key);
  if (saved) return Ed25519KeyIdentity.fromJSON(saved);
  const identity = Ed25519KeyIdentity.generate();
  storage.setItem(key, JSON.stringify(identity.toJSON()));
  return identity;
}
