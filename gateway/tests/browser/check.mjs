// Opens the demo page through the gateway in headless Chromium and reports
// what the browser saw, as JSON on stdout: the photo's pixels in a
// screenshot, the video playing and seeking, and what happens when an HTML
// or SVG file is opened. gateway/tests/browser.rs judges the result.
//
// usage: node check.mjs <gateway url> <page path> <image path> <video path> <html path> <svg path> [<audio path>]
// With an audio path, the photo, the video and the audio are also opened
// directly, each in its own tab, as a person opening a share link does.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [base, page, imgPath, videoPath, htmlPath, svgPath, audioPath] = process.argv.slice(2);
const profile = mkdtempSync(join(tmpdir(), 'gateway-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  acceptDownloads: true,
  viewport: { width: 800, height: 600 },
  deviceScaleFactor: 1,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--autoplay-policy=no-user-gesture-required',
  ],
});

const result = {};
try {
  const tab = await context.newPage();
  const url = `${base}${page}?img=${encodeURIComponent(imgPath)}&video=${encodeURIComponent(videoPath)}`;
  await tab.goto(url);

  // The photo: loaded, then read back from a screenshot of the page.
  await tab.waitForFunction(() => {
    const img = document.getElementById('photo');
    return img.complete && img.naturalWidth > 0;
  }, null, { timeout: 30000 });
  const box = await tab.locator('#photo').boundingBox();
  const shot = (await tab.screenshot()).toString('base64');
  // Decode the screenshot with the browser's own PNG decoder.
  const probe = await context.newPage();
  result.pixels = await probe.evaluate(async ({ shot, box }) => {
    const img = new Image();
    img.src = `data:image/png;base64,${shot}`;
    await img.decode();
    const canvas = document.createElement('canvas');
    canvas.width = img.width;
    canvas.height = img.height;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const at = (fx, fy) => Array.from(ctx.getImageData(
      Math.round(box.x + box.width * fx), Math.round(box.y + box.height * fy), 1, 1).data.slice(0, 3));
    return { topLeft: at(0.25, 0.25), topRight: at(0.75, 0.25),
             bottomLeft: at(0.25, 0.75), bottomRight: at(0.75, 0.75) };
  }, { shot, box });
  await probe.close();
  result.photo = { width: box.width, height: box.height };

  // The video: plays, then seeks into its middle.
  result.video = await tab.evaluate(async () => {
    const v = document.getElementById('clip');
    const until = (event, ok, ms) => new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timeout waiting for ${event}`)), ms);
      const check = () => { if (ok()) { clearTimeout(timer); v.removeEventListener(event, check); resolve(); } };
      v.addEventListener(event, check);
      check();
    });
    const errorText = () => (v.error ? `media error ${v.error.code}: ${v.error.message}` : null);
    try {
      await until('loadedmetadata', () => v.readyState >= 1, 30000);
      await v.play();
      await until('timeupdate', () => v.currentTime > 0.5, 30000);
      const played = v.currentTime;
      v.pause();
      const target = v.duration / 2;
      v.currentTime = target;
      await until('seeked', () => !v.seeking && Math.abs(v.currentTime - target) < 0.1, 30000);
      await until('canplay', () => v.readyState >= 2, 30000);
      return { duration: v.duration, played, target, seekedTo: v.currentTime,
               readyState: v.readyState, error: errorText() };
    } catch (e) {
      return { failed: String(e), error: errorText(), readyState: v.readyState };
    }
  });

  // Opened directly: the document the browser builds around the file must
  // be able to load it (a policy forbidding that leaves a player at 0:00).
  if (audioPath) {
    result.direct = {};
    for (const [kind, path] of [['webm', videoPath], ['ogg', audioPath]]) {
      const t = await context.newPage();
      await t.goto(`${base}${path}`, { waitUntil: 'commit' });
      // A file the page may not load leaves play() pending for ever, and a
      // sandboxed document may run no script at all: each check has its
      // own deadline, in the page and here.
      const deadline = new Promise((resolve) => setTimeout(() => resolve({ failed: 'no answer from the page within 60 s' }), 60000));
      result.direct[kind] = await Promise.race([deadline, t.evaluate(async () => Promise.race([
        new Promise((resolve) => setTimeout(() => resolve({ failed: 'no playback within 45 s' }), 45000)),
        (async () => {
        const m = document.querySelector('video, audio');
        if (!m) return { failed: 'no media element', body: document.body?.innerText?.slice(0, 200) };
        const until = (event, ok, ms) => new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`timeout waiting for ${event}`)), ms);
          const check = () => { if (ok()) { clearTimeout(timer); m.removeEventListener(event, check); resolve(); } };
          m.addEventListener(event, check);
          check();
        });
        const errorText = () => (m.error ? `media error ${m.error.code}: ${m.error.message}` : null);
        try {
          await until('loadedmetadata', () => m.readyState >= 1, 30000);
          m.muted = true;
          await m.play();
          const start = m.currentTime;
          await until('timeupdate', () => m.currentTime > start + 0.5, 30000);
          const played = m.currentTime;
          m.pause();
          const target = m.duration / 2;
          m.currentTime = target;
          await until('seeked', () => !m.seeking && Math.abs(m.currentTime - target) < 0.1, 30000);
          return { duration: m.duration, played, target, seekedTo: m.currentTime, error: errorText() };
        } catch (e) {
          return { failed: String(e), error: errorText(), readyState: m.readyState };
        }
        })(),
      ]))]);
      await t.close();
    }
    const t = await context.newPage();
    await t.goto(`${base}${imgPath}`, { waitUntil: 'commit' });
    const deadline = new Promise((resolve) => setTimeout(() => resolve({ failed: 'no answer from the page within 30 s' }), 30000));
    result.direct.photo = await Promise.race([deadline, t.evaluate(async () => {
      const img = document.querySelector('img');
      if (!img) return { failed: 'no image element' };
      await img.decode().catch(() => {});
      return { naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight };
    })]);
    await t.close();
  }

  // HTML and SVG: downloaded, never rendered.
  result.downloads = {};
  for (const [kind, path] of [['html', htmlPath], ['svg', svgPath]]) {
    const t = await context.newPage();
    const download = t.waitForEvent('download', { timeout: 15000 }).catch(() => null);
    const nav = await t.goto(`${base}${path}`).then(() => 'rendered', (e) => String(e));
    const d = await download;
    result.downloads[kind] = {
      downloaded: d !== null,
      filename: d ? d.suggestedFilename() : null,
      navigation: nav,
      title: await t.title(),
      scriptRan: await t.evaluate(() => Boolean(window.__pwned)).catch(() => false),
    };
    await t.close();
  }
} catch (e) {
  result.error = String(e && e.stack || e);
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify(result));
