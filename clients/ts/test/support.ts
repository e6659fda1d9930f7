// Test support: the local network (`upload-bridge`) running the canister's
// release `.wasm` behind the IC's HTTP interface, and actors made with the
// real generated bindings over the real `HttpAgent`, as a dapp makes them
// against a local replica: the network's root key given, query signatures
// verified, calls signed.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Cbor, HttpAgent, type Identity } from '@icp-sdk/core/agent';
import { Ed25519KeyIdentity } from '@icp-sdk/core/identity';
import { createActor, type Backend } from '../src/bindings/backend';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const NETWORK = process.env.UPLOAD_BRIDGE ?? `${root}target/debug/upload-bridge`;
const WASM = process.env.BACKEND_WASM ?? `${root}target/canister-wasm/wasm32-unknown-unknown/release/backend.wasm`;
/** The index canister's release `.wasm` (`cargo build --release --target wasm32-unknown-unknown -p upload-index --target-dir target/canister-wasm`). */
const INDEX_WASM = process.env.INDEX_WASM ?? `${root}target/canister-wasm/wasm32-unknown-unknown/release/upload_index.wasm`;

export interface NetworkProcess {
  /** The IC HTTP interface (and the test-only `/admin/…` routes). */
  url: string;
  /**
   * The local HTTP gateway: it serves share links (`/s/...`) of the
   * network's default canister only.
   */
  gateway: string;
  /** The network's default canister (the one `gateway` serves). */
  canister: string;
  rootKey: Uint8Array;
  /** Controls every canister `freshCanister` installs. */
  controller: Ed25519KeyIdentity;
  process: ChildProcess;
  stop(): void;
}

/** Starts the network (built by `npm test` with cargo) on a free port. */
export async function startNetwork(): Promise<NetworkProcess> {
  return (await launch([])).net;
}

async function launch(extra: string[]): Promise<{ net: NetworkProcess; info: Record<string, unknown> }> {
  const child = spawn(NETWORK, ['--wasm', WASM, ...extra], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const first = await new Promise<string>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`upload-bridge exited with ${code}; run \`cargo build -p upload-bridge\``)));
    lines.once('line', resolve);
  });
  // Its stdout is read to the end so that nothing it writes can block it.
  lines.on('line', () => undefined);
  const info = JSON.parse(first) as { url: string; gateway: string; canister: string; root_key: string };
  const net: NetworkProcess = {
    url: info.url,
    gateway: info.gateway,
    canister: info.canister,
    rootKey: Uint8Array.from(Buffer.from(info.root_key, 'hex')),
    controller: Ed25519KeyIdentity.generate(),
    process: child,
    stop: () => child.kill(),
  };
  return { net, info: info as unknown as Record<string, unknown> };
}

/** The network started with a fleet: an index and its buckets on several subnets. */
export interface FleetNetwork extends NetworkProcess {
  /** The index canister's id. */
  index: string;
  /** The buckets the index made before the network said it was up. */
  buckets: string[];
  /** The network's subnets (the root subnet first). */
  subnets: string[];
  /** The index's controller (the bridge's fixed TEST key), for `admin_*` calls. */
  fleetController: Ed25519KeyIdentity;
}

/**
 * Why this machine cannot start a fleet network, or undefined when it
 * can: the bridge must know `--index-wasm`, and the index's `.wasm` must
 * be built.
 */
export function fleetUnavailable(): string | undefined {
  if (!existsSync(NETWORK)) return `${NETWORK} is not built (cargo build -p upload-bridge)`;
  const help = spawnSync(NETWORK, ['--help'], { encoding: 'utf8' });
  if (!`${help.stdout}${help.stderr}`.includes('--index-wasm')) {
    return `${NETWORK} has no --index-wasm flag yet (the bridge's fleet is not built)`;
  }
  if (!existsSync(INDEX_WASM)) {
    return `${INDEX_WASM} is not built (cargo build --release --target wasm32-unknown-unknown -p upload-index --target-dir target/canister-wasm)`;
  }
  return undefined;
}

const idOf = (b: unknown): string =>
  typeof b === 'string' ? b : String((b as Record<string, unknown>).canister_id ?? (b as Record<string, unknown>).bucket ?? (b as Record<string, unknown>).id);

/**
 * Starts the network with a fleet (`--subnets 3 --index-wasm ... --bucket-wasm ...`,
 * the bucket module the same release `.wasm` as the default canister's).
 */
export async function startFleetNetwork(subnets = 3): Promise<FleetNetwork> {
  const { net, info } = await launch(['--subnets', String(subnets), '--index-wasm', INDEX_WASM, '--bucket-wasm', WASM]);
  const secret = info.fleet_controller_secret_key;
  if (typeof info.index !== 'string' || typeof secret !== 'string' || !Array.isArray(info.buckets)) {
    net.stop();
    throw new Error(`upload-bridge's JSON line has no fleet (index, buckets, fleet_controller_secret_key): ${JSON.stringify(info)}`);
  }
  return {
    ...net,
    index: info.index,
    buckets: info.buckets.map(idOf),
    subnets: Array.isArray(info.subnets) ? info.subnets.map(String) : [],
    fleetController: Ed25519KeyIdentity.fromSecretKey(Uint8Array.from(Buffer.from(secret, 'hex'))),
  };
}

export async function admin(net: NetworkProcess, path: string, body?: unknown): Promise<unknown> {
  const method = body === undefined && !/install|upgrade|reset|advance_time/.test(path) ? 'GET' : 'POST';
  const response = await fetch(`${net.url}/admin/${path}`, {
    method,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`admin ${path}: ${response.status} ${text}`);
  return text.startsWith('{') ? JSON.parse(text) : text;
}

export interface NetworkStats {
  calls: Record<string, number>;
  executed: Record<string, number>;
  dropped_before: number;
  dropped_after: number;
  replies_out_of_order: number;
  upgrades: number;
  corrupted_reads: number;
}

export const stats = (net: NetworkProcess) => admin(net, 'stats') as Promise<NetworkStats>;

/** A fresh canister for one test, controlled by `net.controller`. */
export async function freshCanister(net: NetworkProcess): Promise<string> {
  const { canister } = (await admin(net, 'install', { controller: net.controller.getPrincipal().toText() })) as {
    canister: string;
  };
  return canister;
}

export function newIdentity(): Ed25519KeyIdentity {
  return Ed25519KeyIdentity.generate();
}

export interface AgentOptions {
  /** Anonymous when absent. */
  identity?: Identity;
  fetch?: typeof fetch;
  /** The agent's own retries of a failed HTTP request (its default: 3). */
  retryTimes?: number;
}

/** An `HttpAgent` for the network, as a dapp makes one for a local replica. */
export function agentFor(net: NetworkProcess, options: AgentOptions = {}): HttpAgent {
  return HttpAgent.createSync({
    host: net.url,
    rootKey: net.rootKey,
    identity: options.identity,
    fetch: options.fetch,
    retryTimes: options.retryTimes,
  });
}

/** The generated actor for `canister` over an `HttpAgent`. */
export function actorFor(net: NetworkProcess, canister: string, options: AgentOptions = {}): Backend {
  return createActor(canister, { agent: agentFor(net, options) });
}

/** The canister method a request posted to the IC's HTTP interface calls. */
export function methodOf(input: RequestInfo | URL, init?: RequestInit): string | undefined {
  const url = String(input instanceof Request ? input.url : input);
  if (!/\/(call|query)$/.test(url) || !(init?.body instanceof Uint8Array || init?.body instanceof ArrayBuffer)) {
    return undefined;
  }
  const envelope = Cbor.decode<{ content: { method_name?: string } }>(new Uint8Array(init.body as ArrayBuffer));
  return envelope.content.method_name;
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
