// Every error a person can meet on the page, in headless Chromium: one
// sentence saying what happened and what to do, never the agent's raw
// text. The network unreachable, no canister given, a canister that is
// not there, a quota exceeded (a limit the canister's controller lowered),
// an upload session that expired, a sign-in (delegation) that expired and
// a fresh sign-in that carries on. Screenshots: target/demo-screenshots/errors-*.png.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  actorFor,
  admin,
  closedPort,
  createCapsule,
  launchChromium,
  nodeClient,
  openPage,
  pageUrl,
  ready,
  removeDir,
  serveDist,
  startNetwork,
  statusMatching,
  tempDir,
  testFile,
} from './support.mjs';

let net;
let server;
let browser;
let client;
let files;
/** A canister of its own, controlled by `controller`, for tests that change its limits. */
let own;
let controller;
let ownLimits;

before(async () => {
  [net, client] = await Promise.all([startNetwork(), nodeClient()]);
  server = await serveDist();
  browser = await launchChromium();
  files = tempDir();
  controller = client.Ed25519KeyIdentity.generate();
  ({ canister: own } = await admin(net, 'install', { controller: controller.getPrincipal().toText() }));
  ownLimits = (await actorFor(client, net, own, controller).stats()).limits;
});

after(async () => {
  await browser?.close();
  server?.close();
  net?.stop();
  removeDir(files);
});

/** The controller sets `own`'s limits to its defaults changed by `change`. */
async function setLimits(change) {
  const result = await actorFor(client, net, own, controller).admin_set_limits({ ...ownLimits, ...change });
  assert.equal(result.__kind__, 'Ok');
}

/** One sentence a person can read: no agent text, stack, request id or object dump. */
function assertPlain(text) {
  assert.ok(text.length > 20 && text.length < 300, `one sentence: ${text}`);
  assert.doesNotMatch(text, /\n|Error\b|Failed to fetch|Request ID|Reject code|Reject text|\bat \S+ \(|:\d+:\d+\)|\[object|undefined|\{"/, text);
  assert.match(text, /[.!]$/, text);
}

const page = (query, options) => openPage(browser, pageUrl(server, query), options);
const failed = (p) => p.waitForSelector('body[data-failed="true"]');

test('the network unreachable: its URL and what to do', async () => {
  const port = await closedPort();
  const network = `http://127.0.0.1:${port}`;
  const { context, page: p, shot } = await page({ network, canister: net.canister });
  await failed(p);
  const text = await p.textContent('#status');
  assert.equal(
    text,
    `Cannot reach the network at ${network}: check that it is running and that the page’s network parameter is its address, then reload.`,
  );
  assertPlain(text);
  await shot('errors-1-network-unreachable');
  await context.close();
});

test('no canister given: the page says how to give one instead of staying on “Signing in…”', async () => {
  const { context, page: p, shot } = await page({ network: net.url });
  await failed(p);
  const text = await p.textContent('#status');
  assert.equal(text, 'No canister given: add ?canister=<canister id> to this page’s address (the local network prints it as “canister”).');
  assertPlain(text);
  assert.match(await p.textContent('#who'), /^Signed in locally as /);
  assert.equal(await p.isDisabled('#upload'), true);
  await shot('errors-2-no-canister');
  await context.close();
});

test('a canister that is not on the network, and one that is not a canister id', async () => {
  const missing = 'ryjl3-tyaaa-aaaaa-aaaba-cai';
  const { context, page: p, shot } = await page({ network: net.url, canister: missing });
  await failed(p);
  const text = await p.textContent('#status');
  assert.equal(text, `There is no canister ${missing} on ${net.url}: check the page’s canister parameter.`);
  assertPlain(text);
  await shot('errors-3-no-such-canister');
  await p.goto(pageUrl(server, { network: net.url, canister: '<b>not-an-id</b>' }));
  await failed(p);
  assert.equal(await p.textContent('#status'), '“<b>not-an-id</b>” is not a canister id: check the page’s canister parameter.');
  assert.equal(await p.$$eval('#status b', (b) => b.length), 0);
  await context.close();
});

test('anything else: a short sentence and the kind of error', async () => {
  const { context, page: p, errors, shot } = await page({ network: net.url, canister: net.canister });
  await ready(p);
  await p.fill('#capsule-name', 'n'.repeat(2000));
  await p.click('#create-capsule');
  const text = await statusMatching(p, /refused/);
  assert.equal(
    text,
    'The canister refused this (InvalidArgument): correct what you entered or try again, and report that kind if it keeps happening.',
  );
  assertPlain(text);
  await shot('errors-4-anything-else');
  assert.deepEqual(errors, []);
  await context.close();
});

test('quota exceeded: the limit and the file’s size, and what to do', async () => {
  await setLimits({ max_file_bytes: 1000n });
  try {
    const { context, page: p, errors, shot } = await page({ network: net.url, canister: own, chunkBytes: 65536 });
    await ready(p);
    await createCapsule(p, 'Quota');
    const big = testFile(files, 'too-big.bin', 5000, 3);
    await p.setInputFiles('#file', big.path);
    await p.click('#upload');
    await p.waitForFunction(() => document.querySelector('#queue li')?.dataset.state === 'failed');
    const line = await p.textContent('#queue li .line');
    assert.equal(
      line,
      'Over quota (FileBytes): this needs 4.9 KiB, but the largest file this canister takes is 1000 B; ' +
        'choose a smaller file or ask the canister’s controller to raise it.',
    );
    assertPlain(line);
    assert.equal(await p.$eval('#queue li progress', (b) => b.value), 0);
    await statusMatching(p, /^The upload ended: 1 failed \(its row says why\)\.$/);
    await shot('errors-5-quota-exceeded');
    assert.deepEqual(errors, []);
    await context.close();
  } finally {
    await setLimits({});
  }
});

test('an upload session that expired: choose the file again', async () => {
  // The controller lets a session sit idle for 1 ms only: it has expired
  // by the time its first chunk arrives.
  await setLimits({ session_idle_timeout_ns: 1_000_000n });
  try {
    const { context, page: p, errors, shot } = await page({ network: net.url, canister: own, chunkBytes: 65536 });
    await ready(p);
    await createCapsule(p, 'Expiring');
    const file = testFile(files, 'slow.bin', 3 * 65536, 4);
    await p.setInputFiles('#file', file.path);
    await p.click('#upload');
    await p.waitForFunction(() => document.querySelector('#queue li')?.dataset.state === 'failed');
    const line = await p.textContent('#queue li .line');
    assert.equal(line, 'The upload session expired (nothing arrived for too long): choose the file again to start it over.');
    assertPlain(line);
    await shot('errors-6-session-expired');

    // With the usual limit back, the same file goes through (a new session).
    await setLimits({});
    await p.setInputFiles('#file', file.path);
    await p.click('#upload');
    await p.waitForFunction(() => document.querySelector('#queue li:nth-child(2)')?.dataset.state === 'done');
    assert.match(await p.textContent('#queue li:nth-child(2) .line'), /^Done: 192\.0 KiB stored as memory \d+ · 3 chunks sent\.$/);
    assert.deepEqual(errors, []);
    await context.close();
  } finally {
    await setLimits({});
  }
});

test('a sign-in (delegation) that expired: sign in again, and the upload goes through', async () => {
  // `session=6`: the page signs in through a delegation that ends in six
  // seconds, as an Internet Identity session ends.
  const { context, page: p, errors, shot } = await page({ network: net.url, canister: net.canister, chunkBytes: 65536, session: 6 });
  await ready(p);
  assert.match(await p.textContent('#who'), /this sign-in ends at /);
  await createCapsule(p, 'Session');
  await p.waitForTimeout(7000);
  const file = testFile(files, 'after-expiry.bin', 2 * 65536 + 5, 6);
  await p.setInputFiles('#file', file.path);
  await p.click('#upload');
  await p.waitForFunction(() => document.querySelector('#queue li')?.dataset.state === 'failed');
  const line = await p.textContent('#queue li .line');
  assert.equal(line, 'Your sign-in expired: sign in again, then choose the same file to continue where it stopped.');
  assertPlain(line);
  assert.equal(await p.isVisible('#sign-in-again'), true);
  await shot('errors-7-sign-in-expired');

  await p.click('#sign-in-again');
  await statusMatching(p, /^Signed in again/);
  assert.equal(await p.isVisible('#sign-in-again'), false);
  await p.setInputFiles('#file', file.path);
  await p.click('#upload');
  await p.waitForFunction(() => document.querySelector('#queue li:nth-child(2)')?.dataset.state === 'done');
  await p.waitForFunction(() => document.querySelectorAll('#gallery li.card').length === 1);
  await shot('errors-8-signed-in-again-uploaded');
  assert.deepEqual(errors, []);
  await context.close();
});
