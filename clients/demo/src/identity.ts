// A locally generated identity kept in the browser's storage: enough to own
// capsules on a local network or replica. On mainnet a dapp signs in with
// Internet Identity instead (`AuthClient` from `@icp-sdk/auth`) and passes
// that identity to `HttpAgent`; the upload client is unchanged.

import type { Identity } from '@icp-sdk/core/agent';
import { DelegationChain, DelegationIdentity, Ed25519KeyIdentity } from '@icp-sdk/core/identity';

export type KeyValueStorage = Pick<Storage, 'getItem' | 'setItem'>;

export function loadOrCreateIdentity(storage: KeyValueStorage, key = 'upload-client-identity'): Ed25519KeyIdentity {
  const saved = storage.getItem(key);
  if (saved) return Ed25519KeyIdentity.fromJSON(saved);
  const identity = Ed25519KeyIdentity.generate();
  storage.setItem(key, JSON.stringify(identity.toJSON()));
  return identity;
}

export interface Session {
  identity: Identity;
  /** When the delegation ends; undefined for the stored key itself. */
  expiresAt: Date | undefined;
}

/**
 * Signs in as the stored key. With `seconds`, as Internet Identity does:
 * a fresh session key that the stored key delegates to for that long,
 * so the calls are signed through a delegation that expires (the
 * principal is the stored key's either way).
 */
export async function signIn(user: Ed25519KeyIdentity, seconds?: number): Promise<Session> {
  if (seconds === undefined) return { identity: user, expiresAt: undefined };
  const sessionKey = Ed25519KeyIdentity.generate();
  const expiresAt = new Date(Date.now() + seconds * 1000);
  const chain = await DelegationChain.create(user, sessionKey.getPublicKey(), expiresAt);
  return { identity: DelegationIdentity.fromDelegation(sessionKey, chain), expiresAt };
}
