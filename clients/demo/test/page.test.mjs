// The demo page in headless Chromium (Debian's `chromium`, driven by
// playwright-core) against the canister's release `.wasm` on the bridge:
// sign in, create a capsule, upload to 100 %, reload mid-upload and resume
// sending only the missing chunks, list, download and check. A screenshot
// of each state is saved under target/demo-screenshots/.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = fileURLToPath(new URL('..', import.meta.url));
const root = join(here, '../..');
const BRIDGE = process.env.UPLOAD_BRIDGE ?? join(root, 'target/debug/upload-bridge');
const WASM = process.env.BACKEND_WASM ?? join(root, 'target/canister-wasm/wasm32-unknown-unknown/release/backend.wasm');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = join(root, 'target/demo-screenshots');
const CHUNK = 65536;

let bridge;
let bridgeProcess;
let server;
let pageUrl;
let browser;
let files;

async function startBridge() {
  const child = spawn(BRIDGE, ['--wasm', WASM], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`upload-bridge exited with ${code}`)));
    createInterface({ input: child.stdout }).once('line', resolve);
  });
  bridgeProcess = child;
  return JSON.parse(line);
}

async function admin(path, body) {
  const response = await fetch(`${bridge.url}/admin/${path}`, {
    method: body === undefined && path === 'stats' ? 'GET' : 'POST',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  assert.ok(response.ok, `${path}: ${text}`);
  return text.startsWith('{') ? JSON.parse(text) : text;
}

function serveDist() {
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

/** A deterministic file on disk (a stable name and mtime, as a user's file). */
function testFile(dir, name, length, seed) {
  const bytes = Buffer.alloc(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    bytes[i] = x >>> 24;
  }
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return { path, length };
}

before(async () => {
  bridge = await startBridge();
  server = await serveDist();
  const { port } = server.address();
  pageUrl =
    `http://127.0.0.1:${port}/index.html?network=${encodeURIComponent(bridge.url)}` +
    `&canister=${bridge.canister}&chunkBytes=${CHUNK}&inFlight=2`;
  mkdirSync(SHOTS, { recursive: true });
  files = mkdtempSync(join(tmpdir(), 'demo-files-'));
  browser = await chromium.launch({
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
    ],
  });
});

after(async () => {
  await browser?.close();
  server?.close();
  bridgeProcess?.kill();
  if (files) rmSync(files, { recursive: true, force: true });
});

test('upload, reload mid-upload and resume, list, download and check, in Chromium', async () => {
  // A fresh profile: its own storage, so its own locally generated identity.
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const shot = (name) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  const ready = () => page.waitForSelector('body[data-ready="true"]');

  await page.goto(pageUrl);
  await ready();
  const who = await page.textContent('#who');
  assert.match(who, /Signed in locally as [a-z0-9-]+/);
  await shot('1-signed-in');

  await page.fill('#capsule-name', 'Holiday');
  await page.click('#create-capsule');
  await page.waitForFunction(() => document.querySelectorAll('#capsules option').length === 1);
  assert.match(await page.textContent('#capsules'), /Holiday/);
  await shot('2-capsule-created');

  // A small file straight to 100 %.
  const small = testFile(files, 'small.bin', 150_000, 1);
  await page.setInputFiles('#file', small.path);
  await page.click('#upload');
  await page.waitForFunction(() => /^100 % · .* stored · \d+ chunks sent/.test(document.querySelector('#progress-text')?.textContent ?? ''));
  assert.equal(await page.getAttribute('#progress', 'value'), '100');
  await shot('3-uploaded-100');

  // A larger one, slowed down by the bridge, reloaded a third of the way in.
  const large = testFile(files, 'large.bin', 40 * CHUNK + 999, 2);
  const chunks = 41;
  await admin('faults', { delay_ms: 120 });
  await page.setInputFiles('#file', large.path);
  await page.click('#upload');
  await page.waitForFunction(() => {
    const percent = Number(document.querySelector('#progress')?.value);
    return percent >= 30 && percent < 100;
  });
  assert.match(await page.textContent('#progress-text'), /\d+ % · .* of .* · .*\/s · .* left/);
  await shot('4-mid-upload');
  await page.reload();
  await ready();
  await admin('faults', {});
  await page.waitForFunction(() => /Unfinished: .*large\.bin/.test(document.querySelector('#unfinished')?.textContent ?? ''));
  await shot('5-after-reload-unfinished');

  await admin('stats/reset');
  await page.setInputFiles('#file', large.path);
  await page.click('#upload');
  await page.waitForFunction(() => /^100 % · .* stored · \d+ chunks sent/.test(document.querySelector('#progress-text')?.textContent ?? ''));
  const done = await page.textContent('#progress-text');
  const [, sent, resumed] = done.match(/(\d+) chunks sent, (\d+) resumed/).map(Number);
  assert.ok(resumed > 0, `resumed chunks: ${done}`);
  assert.equal(sent + resumed, chunks);
  const stats = await admin('stats');
  assert.equal(stats.calls.uploads_put_chunk, sent, 'only the missing chunks went');
  await shot('6-resumed-100');

  // Both memories listed; the large one downloaded and checked.
  await page.waitForFunction(() => document.querySelectorAll('#memories li').length === 2);
  const items = await page.$$eval('#memories li', (lis) => lis.map((li) => li.textContent));
  assert.ok(items.some((t) => t.startsWith('small.bin')) && items.some((t) => t.startsWith('large.bin')), items.join());
  await shot('7-memories');
  await page.click('#memories li:has-text("large.bin") button');
  await page.waitForFunction(() => /SHA-256 verified/.test(document.querySelector('#status')?.textContent ?? ''));
  assert.match(await page.textContent('#status'), new RegExp(`${(large.length / 1024 / 1024).toFixed(1)} MiB downloaded`));
  await shot('8-downloaded-verified');

  assert.deepEqual(errors, []);
  await context.close();
});
