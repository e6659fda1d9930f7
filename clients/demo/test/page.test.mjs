// The page's uploads in headless Chromium against the local network: sign
// in, a capsule, a queue of three files two at a time, a reload mid-upload
// and the resume sending only the missing chunks, a file already stored,
// the verified download, Abort resetting its row, and a file name made of
// markup shown as text. Screenshots: target/demo-screenshots/page-*.png.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  admin,
  createCapsule,
  launchChromium,
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

const CHUNK = 65536;

let net;
let server;
let browser;
let files;
let url;

before(async () => {
  net = await startNetwork();
  server = await serveDist();
  browser = await launchChromium();
  files = tempDir();
  url = pageUrl(server, {
    network: net.url,
    canister: net.canister,
    gateway: net.gateway,
    chunkBytes: CHUNK,
    inFlight: 2,
  });
});

after(async () => {
  await browser?.close();
  server?.close();
  net?.stop();
  removeDir(files);
});

const rowState = (page, name) =>
  page.$eval(`#queue li:has(.name[title="${name}"])`, (li) => li.dataset.state);
const rowLine = (page, name) => page.textContent(`#queue li:has(.name[title="${name}"]) .line`);
const rowsSettled = (page, n) =>
  page.waitForFunction(
    (count) => {
      const rows = [...document.querySelectorAll('#queue li')];
      return rows.length === count && rows.every((r) => ['done', 'failed', 'aborted'].includes(r.dataset.state));
    },
    n,
    { timeout: 120_000 },
  );

test('a queue of three uploads: three rows, two at a time, all reach done, shown in the gallery', async () => {
  const { context, page, errors, shot } = await openPage(browser, url);
  await ready(page);
  assert.match(await page.textContent('#who'), /Signed in locally as [a-z0-9-]+/);
  await shot('page-1-signed-in');
  await createCapsule(page, 'Holiday');
  assert.match(await page.textContent('#capsules'), /Holiday/);

  const three = [1, 2, 3].map((i) => testFile(files, `queued-${i}.bin`, 6 * CHUNK - 1000 * i, 10 + i));
  // Slowed, so that the queue can be seen at work.
  await admin(net, 'faults', { delay_ms: 150 });
  await page.evaluate(() => {
    window.__maxActive = 0;
    window.__sawQueued = false;
    const queue = document.querySelector('#queue');
    new MutationObserver(() => {
      const rows = [...queue.querySelectorAll('li')];
      const active = rows.filter((r) => r.dataset.state === 'preparing' || r.dataset.state === 'uploading').length;
      window.__maxActive = Math.max(window.__maxActive, active);
      if (rows.some((r) => r.dataset.state === 'queued')) window.__sawQueued = true;
    }).observe(queue, { subtree: true, childList: true, attributes: true });
  });
  await page.setInputFiles('#file', three.map((f) => f.path));
  await page.click('#upload');
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll('#queue li')];
    return rows.filter((r) => r.dataset.state === 'uploading' && /\d+ % · /.test(r.textContent)).length === 2 &&
      rows.some((r) => r.dataset.state === 'queued');
  });
  assert.equal(await page.$$eval('#queue li', (rows) => rows.length), 3);
  await shot('page-2-queue-two-at-a-time');
  await rowsSettled(page, 3);
  await admin(net, 'faults', {});
  for (const f of three) {
    const name = f.path.split('/').pop();
    assert.equal(await rowState(page, name), 'done', await rowLine(page, name));
    assert.match(await rowLine(page, name), /^Done: 38\d\.\d KiB stored as memory \d+ · 6 chunks sent\.$/);
  }
  assert.equal(await page.evaluate(() => window.__maxActive), 2, 'two uploads at a time, never more');
  assert.equal(await page.evaluate(() => window.__sawQueued), true, 'the third waited its turn');
  await statusMatching(page, /All 3 uploads ended: 3 stored\./);
  await page.waitForFunction(() => document.querySelectorAll('#gallery li.card').length === 3);
  assert.deepEqual(
    await page.$$eval('#gallery li.card .name', (n) => n.map((x) => x.textContent).sort()),
    ['queued-1.bin', 'queued-2.bin', 'queued-3.bin'],
  );
  await shot('page-3-queue-done');
  assert.deepEqual(errors, []);
  await context.close();
});

test('reload mid-upload and resume with only the missing chunks; a file already stored; download and check', async () => {
  const { context, page, errors, shot } = await openPage(browser, url);
  await ready(page);
  await createCapsule(page, 'Resume');

  const small = testFile(files, 'small.bin', 150_000, 1);
  await page.setInputFiles('#file', small.path);
  await page.click('#upload');
  await page.waitForFunction(() => document.querySelector('#queue li')?.dataset.state === 'done');
  assert.match(await rowLine(page, 'small.bin'), /^Done: 146\.5 KiB stored as memory \d+ · 3 chunks sent\.$/);

  // A larger one, slowed down by the network, reloaded a third of the way in.
  const large = testFile(files, 'large.bin', 40 * CHUNK + 999, 2);
  const chunks = 41;
  await admin(net, 'faults', { delay_ms: 120 });
  await page.setInputFiles('#file', large.path);
  await page.click('#upload');
  await page.waitForFunction(() => {
    const bar = document.querySelector('#queue li:nth-child(2) progress');
    return bar && bar.value >= 30 && bar.value < 100;
  });
  assert.match(await rowLine(page, 'large.bin'), /^\d+ % · .* of 2\.5 MiB · .*\/s · .* left$/);
  await shot('page-4-mid-upload');
  await page.reload();
  await ready(page);
  await admin(net, 'faults', {});
  await page.waitForFunction(() => /Unfinished: large\.bin/.test(document.querySelector('#unfinished')?.textContent ?? ''));
  await shot('page-5-after-reload-unfinished');

  await admin(net, 'stats/reset');
  await page.setInputFiles('#file', large.path);
  await page.click('#upload');
  await page.waitForFunction(() => ['done', 'failed'].includes(document.querySelector('#queue li')?.dataset.state));
  const done = await rowLine(page, 'large.bin');
  const [, sent, resumed] = done.match(/^Done: 2\.5 MiB stored as memory \d+ · (\d+) chunks? sent, (\d+) resumed from before\.$/).map(Number);
  assert.ok(resumed > 0, `resumed chunks: ${done}`);
  assert.equal(sent + resumed, chunks);
  const stats = await admin(net, 'stats');
  assert.equal(stats.calls.uploads_put_chunk, sent, 'only the missing chunks went');
  await page.waitForFunction(() => document.querySelector('#unfinished')?.textContent === '');
  await shot('page-6-resumed');

  // The same small file again: the canister already has it.
  await page.setInputFiles('#file', small.path);
  await page.click('#upload');
  await page.waitForFunction(() => document.querySelectorAll('#queue li[data-state="done"]').length === 2);
  assert.match(await page.textContent('#queue li:nth-child(2) .line'), /^Already stored as memory \d+: nothing was sent\.$/);
  await shot('page-7-already-stored');

  // Both in the gallery; the large one downloaded and checked.
  await page.waitForFunction(() => document.querySelectorAll('#gallery li.card').length === 2);
  const cards = await page.$$eval('#gallery li.card', (lis) => lis.map((li) => li.textContent));
  assert.ok(cards.some((t) => t.startsWith('BINsmall.bin146.5 KiB')) && cards.some((t) => t.startsWith('BINlarge.bin2.5 MiB')), cards.join());
  await page.click('#gallery li.card:has(.name[title="large.bin"]) button.download');
  const status = await statusMatching(page, /SHA-256 verified/);
  assert.match(status, /^large\.bin: 2\.5 MiB downloaded, SHA-256 verified \([0-9a-f]{12}…\)\.$/);
  assert.match(await page.textContent('#gallery li.card:has(.name[title="large.bin"]) .note'), /SHA-256 checked: [0-9a-f]{12}… matches the upload\./);
  await shot('page-8-downloaded-verified');
  assert.deepEqual(errors, []);
  await context.close();
});

test('Abort resets its row: no stale percentage or time left, and nothing stays unfinished', async () => {
  const { context, page, errors, shot } = await openPage(browser, url);
  await ready(page);
  await createCapsule(page, 'Abort');
  const big = testFile(files, 'aborted.bin', 40 * CHUNK, 5);
  await admin(net, 'faults', { delay_ms: 150 });
  try {
    await page.setInputFiles('#file', big.path);
    await page.click('#upload');
    await page.waitForFunction(() => Number(document.querySelector('#queue li progress')?.value) >= 20);
    assert.match(await rowLine(page, 'aborted.bin'), /\d+ % · .* left/);
    await page.click('#queue li button.abort');
    await page.waitForFunction(() => document.querySelector('#queue li')?.dataset.state === 'aborted');
    // Reports still in flight when Abort was pressed must not come back.
    await page.waitForTimeout(1000);
  } finally {
    await admin(net, 'faults', {});
  }
  assert.equal(await rowState(page, 'aborted.bin'), 'aborted');
  const line = await rowLine(page, 'aborted.bin');
  assert.equal(line, 'Aborted: nothing more is sent, and the canister freed what it had reserved.');
  assert.doesNotMatch(line, /%|left/);
  assert.equal(await page.$eval('#queue li progress', (p) => p.value), 0);
  assert.equal(await page.$eval('#queue li button.abort', (b) => b.disabled), true);
  await page.waitForFunction(() => !/aborted\.bin/.test(document.querySelector('#unfinished')?.textContent ?? ''));
  await statusMatching(page, /The upload ended: 1 aborted\./);
  await shot('page-9-aborted');
  assert.deepEqual(errors, []);
  await context.close();
});

test('a file named as markup is shown as text everywhere: no element is made, no script runs', async () => {
  const { context, page, errors, shot } = await openPage(browser, url);
  await ready(page);
  await createCapsule(page, 'Names');
  const name = '<img src=x onerror=window.__pwned=1>.bin';
  const evil = testFile(files, name, 1000, 7);
  await page.setInputFiles('#file', evil.path);
  await page.click('#upload');
  await page.waitForFunction(() => document.querySelector('#queue li')?.dataset.state === 'done');
  await page.waitForFunction(() => document.querySelectorAll('#gallery li.card').length === 1);
  assert.equal(await page.textContent('#queue li .name'), name);
  assert.equal(await page.textContent('#gallery li.card .name'), name);
  // The viewer offers it for download (not a type shown in the page): still text.
  await page.click('#gallery li.card button.view');
  await page.waitForSelector('#viewer[data-state="open"] a[download]');
  assert.equal(await page.textContent('#viewer-title'), name);
  assert.equal(await page.textContent('#viewer-stage a'), `Download ${name}`);
  // Sharing and deleting say its name too.
  await page.click('#gallery li.card button.share-button');
  await page.click('#gallery li.card .share button.create-link');
  await page.waitForFunction(() => /Link created/.test(document.querySelector('#gallery li.card .note')?.textContent ?? ''));
  assert.ok((await page.textContent('#gallery li.card .note')).includes(name));
  await page.waitForTimeout(500);
  await shot('page-10-markup-name-as-text');
  assert.equal(await page.$$eval('img[src="x"], img[src$="/x"]', (imgs) => imgs.length), 0, 'no <img> made from the name');
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  await page.click('#viewer-close');
  await page.click('#gallery li.card button.delete');
  await page.click('#gallery li.card button.delete');
  const status = await statusMatching(page, /deleted/);
  assert.equal(status, `${name} deleted, with its share links.`);
  await page.waitForFunction(() => document.querySelectorAll('#gallery li.card').length === 0);
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  assert.deepEqual(errors, []);
  await context.close();
});
