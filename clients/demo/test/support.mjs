// What the page tests share: the local network (`upload-bridge` running
// the canister's release `.wasm`), the page's dist/ served on a free
// port, headless Chromium (Debian's, driven by playwright-core), the
// client bundled for Node (to set up memories and limits as a dapp's
// script would), and screenshots under target/demo-screenshots/.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';

export const here = fileURLToPath(new URL('..', import.meta.url));
export const root = join(here, '../..');
const BRIDGE = process.env.UPLOAD_BRIDGE ?? join(root, 'target/debug/upload-bridge');
const WASM = process.env.BACKEND_WASM ?? join(root, 'target/canister-wasm/wasm32-unknown-unknown/release/backend.wasm');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const SHOTS = join(root, 'target/demo-screenshots');

/** The local network: `{ url, gateway, canister, controller, root_key }`, and `stop()`. */
export async function startNetwork() {
  const child = spawn(BRIDGE, ['--wasm', WASM], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`upload-bridge exited with ${code}`)));
    createInterface({ input: child.stdout }).once('line', resolve);
  });
  const net = JSON.parse(line);
  net.rootKey = Uint8Array.from(Buffer.from(net.root_key, 'hex'));
  net.stop = () => child.kill();
  return net;
}

const INDEX_WASM = process.env.INDEX_WASM ?? join(root, 'target/canister-wasm/wasm32-unknown-unknown/release/upload_index.wasm');

/** Why a fleet network (an index and its buckets) cannot start here, or undefined when it can. */
export function fleetUnavailable() {
  if (!existsSync(BRIDGE)) return `${BRIDGE} is not built (cargo build -p upload-bridge)`;
  const help = spawnSync(BRIDGE, ['--help'], { encoding: 'utf8' });
  if (!`${help.stdout}${help.stderr}`.includes('--index-wasm')) return `${BRIDGE} has no --index-wasm flag yet`;
  if (!existsSync(INDEX_WASM)) {
    return `${INDEX_WASM} is not built (cargo build --release --target wasm32-unknown-unknown -p upload-index --target-dir target/canister-wasm)`;
  }
  return undefined;
}

/**
 * The local network with a fleet (`--subnets 3 --index-wasm … --bucket-wasm …`):
 * its JSON line also names `index`, `buckets` and the index's controller's
 * TEST key (`fleet_controller_secret_key`).
 */
export async function startFleetNetwork() {
  const child = spawn(BRIDGE, ['--wasm', WASM, '--subnets', '3', '--index-wasm', INDEX_WASM, '--bucket-wasm', WASM], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const line = await new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`upload-bridge exited with ${code}`)));
    lines.once('line', resolve);
  });
  lines.on('line', () => undefined);
  const net = JSON.parse(line);
  net.rootKey = Uint8Array.from(Buffer.from(net.root_key, 'hex'));
  net.stop = () => child.kill();
  assert.equal(typeof net.index, 'string', `no index in ${line}`);
  return net;
}

/** The network's test-only `/admin/…` routes. */
export async function admin(net, path, body) {
  const post = body !== undefined || /install|upgrade|reset|advance_time/.test(path);
  const response = await fetch(`${net.url}/admin/${path}`, {
    method: post ? 'POST' : 'GET',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  assert.ok(response.ok, `${path}: ${text}`);
  return text.startsWith('{') ? JSON.parse(text) : text;
}

/** The client, its bindings and @icp-sdk/core, bundled for Node as the page is for the browser. */
export async function nodeClient() {
  const outfile = join(root, 'target/demo-test/node-client.mjs');
  await build({
    entryPoints: [join(here, 'test/node-client.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile,
    nodePaths: [join(here, '../ts/node_modules')],
    logLevel: 'warning',
    banner: { js: "import { createRequire as __require } from 'node:module'; const require = __require(import.meta.url);" },
  });
  return import(`${outfile}?${Date.now()}`);
}

/** An actor on `canister` for `identity` (anonymous when absent), as a dapp makes one for a local network. */
export function actorFor(client, net, canister, identity) {
  const agent = client.HttpAgent.createSync({ host: net.url, rootKey: net.rootKey, identity });
  return client.createActor(canister, { agent });
}

/** Serves the page's dist/ on a free port. */
export function serveDist() {
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.map': 'application/json' };
  const s = createServer((request, response) => {
    const path = new URL(request.url, 'http://x').pathname.replace(/^\/$/, '/index.html');
    try {
      const body = readFileSync(join(here, 'dist', path.replace(/\.\./g, '')));
      response.writeHead(200, { 'content-type': types[extname(path)] ?? 'application/octet-stream' });
      response.end(body);
    } catch {
      response.writeHead(404).end();
    }
  });
  return new Promise((resolve) => s.listen(0, '127.0.0.1', () => resolve(s)));
}

/** The page's URL on `server` with these query parameters. */
export function pageUrl(server, query) {
  const { port } = server.address();
  const search = new URLSearchParams(Object.entries(query).filter(([, v]) => v !== undefined)).toString();
  return `http://127.0.0.1:${port}/index.html${search ? `?${search}` : ''}`;
}

export function launchChromium() {
  mkdirSync(SHOTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
}

/**
 * A page in a new browser context (its own storage: its own identity,
 * unless `identity` is given, which the page then signs in as), with
 * page errors collected and a screenshot helper.
 */
export async function openPage(browser, url, { identity, viewport } = {}) {
  const context = await browser.newContext({ viewport: viewport ?? { width: 1100, height: 900 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(url).origin });
  if (identity) {
    const saved = JSON.stringify(identity.toJSON());
    await context.addInitScript((value) => localStorage.setItem('upload-demo-identity', value), saved);
  }
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(url);
  const shot = (name) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  return { context, page, errors, shot };
}

export const ready = (page) => page.waitForSelector('body[data-ready="true"]');

/** Waits until the status line matches `pattern`, and returns its text. */
export async function statusMatching(page, pattern) {
  await page.waitForFunction(
    ([source, flags]) => new RegExp(source, flags).test(document.querySelector('#status')?.textContent ?? ''),
    [pattern.source, pattern.flags],
  );
  return page.textContent('#status');
}

/** Creates a capsule in the page and waits until it is selected. */
export async function createCapsule(page, name) {
  const before = await page.$$eval('#capsules option', (o) => o.length);
  await page.fill('#capsule-name', name);
  await page.click('#create-capsule');
  await page.waitForFunction((n) => document.querySelectorAll('#capsules option').length === n + 1, before);
}

export function tempDir() {
  return mkdtempSync(join(tmpdir(), 'demo-files-'));
}

export function removeDir(dir) {
  if (dir) rmSync(dir, { recursive: true, force: true });
}

/** A deterministic file on disk (a stable name and mtime, as a user's file). */
export function testFile(dir, name, length, seed) {
  const bytes = Buffer.alloc(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    bytes[i] = x >>> 24;
  }
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return { path, length, bytes };
}

/** A WebM video by ffmpeg (Debian's package), as gateway/tests/common/media.rs makes one. */
export function webm(dir, { seconds = 4, size = '320x180' } = {}) {
  const path = join(dir, 'clip.webm');
  const run = spawnSync(
    'ffmpeg',
    ['-v', 'error', '-y', '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=25`, '-t', String(seconds), '-an',
      '-c:v', 'libvpx', '-b:v', '1M', '-g', '25', '-deadline', 'realtime', '-cpu-used', '8', path],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  assert.equal(run.status, 0, 'ffmpeg (Debian’s ffmpeg package) must be installed');
  return path;
}

/** A PNG photo-like picture by ffmpeg. */
export function png(dir, name = 'photo.png', size = '800x600') {
  const path = join(dir, name);
  const run = spawnSync(
    'ffmpeg',
    ['-v', 'error', '-y', '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=1`, '-frames:v', '1', path],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  assert.equal(run.status, 0, 'ffmpeg (Debian’s ffmpeg package) must be installed');
  return path;
}

/** A free TCP port nothing listens on (bound, then closed). */
export async function closedPort() {
  const s = createServer();
  await new Promise((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address();
  await new Promise((resolve) => s.close(resolve));
  return port;
}

/** Runs `work` over `items`, `n` at a time. */
export async function inParallel(items, n, work) {
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      await work(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: n }, lane));
}
