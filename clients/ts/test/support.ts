// Test support: a bridge process running the canister's release `.wasm`,
// and actors made with the real generated bindings over a `BridgeAgent`.

import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Ed25519KeyIdentity } from '@icp-sdk/core/identity';
import { Principal } from '@icp-sdk/core/principal';
import { createActor, type Backend } from '../src/bindings/backend';
import { BridgeAgent } from '../src/bridge-agent';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const BRIDGE = process.env.UPLOAD_BRIDGE ?? `${root}target/debug/upload-bridge`;
const WASM = process.env.BACKEND_WASM ?? `${root}target/canister-wasm/wasm32-unknown-unknown/release/backend.wasm`;

export interface BridgeProcess {
  url: string;
  controller: string;
  process: ChildProcess;
  stop(): void;
}

/** Starts the bridge (built by `npm test` with cargo) on a free port. */
export async function startBridge(): Promise<BridgeProcess> {
  const child = spawn(BRIDGE, ['--wasm', WASM], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const first = await new Promise<string>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`upload-bridge exited with ${code}; run \`cargo build -p upload-bridge\``)));
    lines.once('line', resolve);
  });
  const info = JSON.parse(first) as { url: string; controller: string };
  return { ...info, process: child, stop: () => child.kill() };
}

export async function admin(bridge: BridgeProcess, path: string, body?: unknown): Promise<unknown> {
  const method = body === undefined && !/install|upgrade|reset/.test(path) ? 'GET' : 'POST';
  const response = await fetch(`${bridge.url}/admin/${path}`, {
    method,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`admin ${path}: ${response.status} ${text}`);
  return text.startsWith('{') ? JSON.parse(text) : text;
}

export interface BridgeStats {
  calls: Record<string, number>;
  executed: Record<string, number>;
  dropped_before: number;
  dropped_after: number;
  replies_out_of_order: number;
  upgrades: number;
  corrupted_reads: number;
}

export const stats = (bridge: BridgeProcess) => admin(bridge, 'stats') as Promise<BridgeStats>;

/** A fresh canister for one test. */
export async function freshCanister(bridge: BridgeProcess): Promise<string> {
  const { canister } = (await admin(bridge, 'install')) as { canister: string };
  return canister;
}

export function newIdentity(): Ed25519KeyIdentity {
  return Ed25519KeyIdentity.generate();
}

export interface ActorOptions {
  identity?: Ed25519KeyIdentity;
  caller?: Principal;
  fetch?: typeof fetch;
}

/** The generated actor for `canister`, its calls sent to the bridge. */
export function actorFor(bridge: BridgeProcess, canister: string, options: ActorOptions = {}): Backend {
  const agent = new BridgeAgent({ url: bridge.url, identity: options.identity, caller: options.caller, fetch: options.fetch });
  return createActor(canister, { agent });
}

/** Deterministic pseudo-random bytes (xorshift), so failures reproduce. */
export function testBytes(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}
