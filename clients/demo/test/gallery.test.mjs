// The gallery in headless Chromium against the local network: 130
// memories with thumbnails (uploaded from Node through the client, as the
// page's own identity), shown a page of 100 at a time; a photo and a
// video (made by ffmpeg, its thumbnail taken by the page from its frame)
// shown in the viewer through short-lived share links, the video playing;
// a share link opened by another user (a new browser context), then
// revoked and refused (404). The network's default canister is used: it
// is the one its gateway serves. Screenshots: target/demo-screenshots/gallery-*.png.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import {
  actorFor,
  admin,
  createCapsule,
  inParallel,
  launchChromium,
  nodeClient,
  openPage,
  pageUrl,
  png,
  ready,
  removeDir,
  serveDist,
  SHOTS,
  startNetwork,
  tempDir,
  webm,
} from './support.mjs';

let net;
let server;
let browser;
let client;
let files;
let url;

before(async () => {
  [net, client] = await Promise.all([startNetwork(), nodeClient()]);
  server = await serveDist();
  browser = await launchChromium();
  files = tempDir();
  url = pageUrl(server, { network: net.url, canister: net.canister, gateway: net.gateway, inFlight: 4 });
});

after(async () => {
  await browser?.close();
  server?.close();
  net?.stop();
  removeDir(files);
});

/** `n` small numbered JPEG pictures (a few KiB each), drawn by Chromium. */
async function numberedJpegs(n) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const encoded = await page.evaluate(async (count) => {
    const canvas = document.createElement('canvas');
    canvas.width = 192;
    canvas.height = 144;
    const g = canvas.getContext('2d');
    const out = [];
    for (let i = 1; i <= count; i++) {
      g.fillStyle = `hsl(${(i * 137) % 360} 55% 50%)`;
      g.fillRect(0, 0, 192, 144);
      g.fillStyle = '#fff';
      g.font = 'bold 64px sans-serif';
      g.textAlign = 'center';
      g.textBaseline = 'middle';
      g.fillText(String(i), 96, 76);
      const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', 0.8));
      const bytes = new Uint8Array(await blob.arrayBuffer());
      let s = '';
      for (const b of bytes) s += String.fromCharCode(b);
      out.push(btoa(s));
    }
    return out;
  }, n);
  await context.close();
  return encoded.map((b64) => Uint8Array.from(Buffer.from(b64, 'base64')));
}

test('130 memories with thumbnails: a page of 100, then "More" shows the other 30', async () => {
  const identity = client.Ed25519KeyIdentity.generate();
  const actor = actorFor(client, net, net.canister, identity);
  const capsuleId = client.unwrap('capsules_create', await actor.capsules_create('Album')).capsule_id;
  const pictures = await numberedJpegs(130);
  // Each memory is its own picture, and its own thumbnail.
  await inParallel(pictures, 8, async (bytes, i) => {
    const name = `photo-${String(i + 1).padStart(3, '0')}.jpg`;
    await client.upload(actor, capsuleId, bytes, {
      name,
      mimeType: 'image/jpeg',
      chunkBytes: 65536,
      inFlight: 1,
      thumbnail: { mime_type: 'image/jpeg', bytes },
    });
  });

  await admin(net, 'stats/reset');
  const { context, page, errors, shot } = await openPage(browser, url, { identity });
  await ready(page);
  await page.waitForFunction(() => document.querySelectorAll('#gallery li.card').length === 100);
  assert.equal(await page.isVisible('#more'), true);
  assert.equal(await page.textContent('#gallery-count'), '100 memories shown; more follow.');
  // Every card shows its thumbnail, decoded (not a type icon).
  await page.waitForFunction(() =>
    [...document.querySelectorAll('#gallery li.card')].every((c) => {
      const img = c.querySelector('.thumb img');
      return c.dataset.thumbnail === 'yes' && img?.complete && img.naturalWidth === 192;
    }),
  );
  // Oldest first: in memory id order (uploaded 8 at a time, so not quite in name order).
  const ids = await page.$$eval('#gallery li.card', (c) => c.map((x) => Number(x.dataset.memoryId)));
  assert.deepEqual(ids, [...ids].sort((a, b) => a - b));
  await shot('gallery-1-first-100-of-130');

  await page.click('#more');
  await page.waitForFunction(() => document.querySelectorAll('#gallery li.card').length === 130);
  await page.waitForFunction(() => document.querySelector('#more').hidden);
  assert.equal(await page.textContent('#gallery-count'), '130 memories.');
  const all = await page.$$eval('#gallery li.card .name', (n) => n.map((x) => x.textContent).sort());
  assert.deepEqual(all, Array.from({ length: 130 }, (_, i) => `photo-${String(i + 1).padStart(3, '0')}.jpg`));
  assert.equal(await page.$$eval('#gallery li.card[data-thumbnail="yes"]', (c) => c.length), 130);
  const { calls } = await admin(net, 'stats');
  assert.equal(calls.memories_list, 2, 'two pages, one query each');
  await page.locator('#gallery li.card:last-child').scrollIntoViewIfNeeded();
  await page.screenshot({ path: `${SHOTS}/gallery-2-all-130.png` });

  // A photo in the viewer: an <img> through a 10-minute share link.
  const seventh = '#gallery li.card:has(.name[title="photo-007.jpg"])';
  const memoryId = await page.getAttribute(seventh, 'data-memory-id');
  await page.click(`${seventh} button.view`);
  await page.waitForSelector('#viewer[data-state="open"] img');
  await page.waitForFunction(() => document.querySelector('#viewer img').naturalWidth === 192);
  assert.match(await page.getAttribute('#viewer img', 'src'), new RegExp(`^${net.gateway}/s/${memoryId}/\\d+/`));
  await page.screenshot({ path: `${SHOTS}/gallery-3-photo-in-viewer.png` });
  await page.click('#viewer-close');
  assert.deepEqual(errors, []);
  await context.close();
});

test('a video: thumbnail from its frame, played in the viewer; a share link another user opens, then revoked: 404', async () => {
  const { context, page, errors, shot } = await openPage(browser, url);
  await ready(page);
  await createCapsule(page, 'Films');
  const clip = webm(files);
  const photo = png(files, 'quadrants.png', '640x480');
  await page.setInputFiles('#file', [clip, photo]);
  await page.click('#upload');
  await page.waitForFunction(() => document.querySelectorAll('#queue li[data-state="done"]').length === 2, null, { timeout: 120_000 });
  await page.waitForFunction(() => document.querySelectorAll('#gallery li.card').length === 2);
  // The page made both thumbnails: the video's from its frame at one second.
  for (const name of ['clip.webm', 'quadrants.png']) {
    const card = `#gallery li.card:has(.name[title="${name}"])`;
    assert.equal(await page.getAttribute(card, 'data-thumbnail'), 'yes', name);
    await page.waitForFunction((sel) => document.querySelector(`${sel} .thumb img`)?.naturalWidth > 0, card);
  }
  const thumbWidth = await page.$eval('#gallery li.card:has(.name[title="clip.webm"]) .thumb img', (img) => img.naturalWidth);
  assert.equal(thumbWidth, 256, 'the longest side is 256 px');
  await shot('gallery-4-video-and-photo-thumbnails');

  // Viewed: a <video> on a short-lived link, playing.
  await page.click('#gallery li.card:has(.name[title="clip.webm"]) button.view');
  await page.waitForSelector('#viewer[data-state="open"] video');
  await page.waitForFunction(() => document.querySelector('#viewer video').currentTime > 0.5, null, { timeout: 60_000 });
  const t1 = await page.$eval('#viewer video', (v) => v.currentTime);
  await page.waitForFunction((t) => document.querySelector('#viewer video').currentTime > t + 0.5, t1);
  await shot('gallery-5-video-playing-in-viewer');
  // Closing the viewer revokes its link.
  await page.click('#viewer-close');
  await page.click('#gallery li.card:has(.name[title="clip.webm"]) button.share-button');
  const panel = '#gallery li.card:has(.name[title="clip.webm"]) .share';
  await page.waitForFunction((p) => /No links/.test(document.querySelector(`${p} .links`)?.textContent ?? ''), panel);

  // A link for an hour, copied to the clipboard.
  await page.selectOption(`${panel} select.expiry`, { label: '1 hour' });
  await page.click(`${panel} button.create-link`);
  await page.waitForFunction((p) => document.querySelectorAll(`${p} .links li[data-link-id]`).length === 1, panel);
  const link = await page.getAttribute(panel, 'data-last-link');
  assert.match(link, new RegExp(`^${net.gateway}/s/\\d+/\\d+/[0-9a-f]+`));
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), link);
  assert.equal(await page.inputValue(`${panel} .links li input`), link);
  assert.match(await page.textContent(`${panel} .links li`), /until /);
  assert.match(
    await page.textContent('#gallery li.card:has(.name[title="clip.webm"]) .note'),
    /^Link created and copied: anyone who has it can open clip\.webm for 1 hour\.$/,
  );
  await shot('gallery-6-share-link-created');

  // Another user: a new browser context, with no identity of the page's.
  const other = await browser.newContext();
  const viewer = await other.newPage();
  const response = await viewer.goto(link);
  assert.equal(response.status(), 200);
  assert.equal(response.headers()['content-type'], 'video/webm');
  await viewer.close();
  // And plays it in a page of its own.
  const player = await other.newPage();
  await player.setContent(`<video src="${link}" muted autoplay playsinline style="width:640px"></video>`, {
    waitUntil: 'domcontentloaded',
  });
  await player.waitForFunction(() => document.querySelector('video').currentTime > 1, null, { timeout: 60_000 });
  await player.screenshot({ path: `${SHOTS}/gallery-7-shared-link-playing-for-another-user.png` });
  await other.close();

  // Revoked: a third user (a fresh browser, no cached copy) gets 404.
  await page.click(`${panel} .links li button.revoke`);
  await page.waitForFunction((p) => /No links/.test(document.querySelector(`${p} .links`)?.textContent ?? ''), panel);
  assert.match(await page.textContent('#gallery li.card:has(.name[title="clip.webm"]) .note'), /^Link revoked: it now answers 404/);
  await shot('gallery-8-link-revoked');
  const late = await browser.newContext();
  const refused = await late.newPage();
  const gone = await refused.goto(link);
  assert.equal(gone.status(), 404);
  await refused.screenshot({ path: `${SHOTS}/gallery-9-revoked-link-404.png` });
  await late.close();
  assert.deepEqual(errors, []);
  await context.close();
});
