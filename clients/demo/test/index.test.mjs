// The page on an index (`?index=<id>`) in headless Chromium against the
// local network started with a fleet: the capsule is created through the
// index, the file uploaded to and read back from the bucket it names;
// once the index seals that bucket, the next upload goes to the bucket the
// capsule continues in, and the gallery lists both, oldest first.
// Screenshots: target/demo-screenshots/index-*.png. Skipped, saying why,
// when the bridge cannot start a fleet here.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  createCapsule,
  fleetUnavailable,
  launchChromium,
  nodeClient,
  openPage,
  pageUrl,
  ready,
  removeDir,
  serveDist,
  startFleetNetwork,
  statusMatching,
  tempDir,
  testFile,
} from './support.mjs';

const CHUNK = 65536;
const unavailable = fleetUnavailable();

let net;
let server;
let browser;
let files;
let client;

before(async () => {
  if (unavailable) return;
  net = await startFleetNetwork();
  server = await serveDist();
  browser = await launchChromium();
  files = tempDir();
  client = await nodeClient();
});

after(async () => {
  await browser?.close();
  server?.close();
  net?.stop();
  removeDir(files);
});

const cards = (page) =>
  page.$$eval('#gallery li.card', (items) => items.map((li) => [li.querySelector('.name').title, li.dataset.bucket]));

test('on an index: capsule through the index, uploads and downloads through its bucket, a sealed bucket continued', { timeout: 300_000 }, async (t) => {
  if (unavailable) {
    // CI builds everything the fleet needs: a skip there is a failure.
    if (process.env.REQUIRE_FLEET) throw new Error(`the fleet is required (REQUIRE_FLEET): ${unavailable}`);
    t.skip(`needs upload-bridge --index-wasm: ${unavailable}`);
    return;
  }
  // The page's user, whom the test also drives from Node.
  const identity = client.Ed25519KeyIdentity.generate();
  const agent = client.HttpAgent.createSync({ host: net.url, rootKey: net.rootKey, identity });
  const fleet = new client.IndexClient({ agent, index: net.index });
  const url = pageUrl(server, { network: net.url, index: net.index, chunkBytes: CHUNK, inFlight: 2 });
  const { context, page, errors, shot } = await openPage(browser, url, { identity });
  await ready(page);
  await createCapsule(page, 'Across buckets');
  const capsuleId = BigInt(await page.$eval('#capsules', (s) => s.value));
  const location = await fleet.locate(capsuleId);
  const first = location.uploadBucket.toText();
  assert.ok(net.buckets.includes(first), `the capsule is on a bucket of the index: ${first}`);
  assert.equal((await fleet.capsule(capsuleId)).name, 'Across buckets');

  const one = testFile(files, 'first.bin', 3 * CHUNK + 17, 1);
  await page.setInputFiles('#file', one.path);
  await page.click('#upload');
  await page.waitForFunction(() => document.querySelector('#queue li')?.dataset.state === 'done', null, { timeout: 120_000 });
  await page.waitForFunction(() => document.querySelectorAll('#gallery li.card').length === 1);
  assert.deepEqual(await cards(page), [['first.bin', first]]);
  // Its bytes on the bucket, as uploaded.
  const [stored] = (await fleet.bucket(first).memories_list({ capsule_id: capsuleId, after: undefined, limit: 10 })).Ok.memories;
  const { blob } = await fleet.download({ bucket: first, memoryId: stored.memory_id });
  assert.ok(Buffer.from(await blob.arrayBuffer()).equals(one.bytes));
  await page.click('#gallery li.card:has(.name[title="first.bin"]) button.download');
  assert.match(await statusMatching(page, /downloaded/), /^first\.bin: .* downloaded, SHA-256 verified \([0-9a-f]{12}…\)\.$/);
  await shot('index-1-first-bucket');

  // The index's controller seals the bucket: the next upload moves on.
  const controller = client.Ed25519KeyIdentity.fromSecretKey(Uint8Array.from(Buffer.from(net.fleet_controller_secret_key, 'hex')));
  const admin = client.createIndexActor(net.index, {
    agent: client.HttpAgent.createSync({ host: net.url, rootKey: net.rootKey, identity: controller }),
  });
  const sealed = await admin.admin_set_bucket_state(location.uploadBucket, client.IndexBucketState.Sealed);
  assert.equal(sealed.__kind__, 'Ok');
  try {
    const two = testFile(files, 'second.bin', 2 * CHUNK + 5, 2);
    await page.setInputFiles('#file', two.path);
    await page.click('#upload');
    await page.waitForFunction(() => document.querySelectorAll('#queue li[data-state="done"]').length === 2, null, { timeout: 120_000 });
    await page.waitForFunction(() => document.querySelectorAll('#gallery li.card').length === 2);
    const moved = await fleet.locate(capsuleId, { fresh: true });
    const buckets = moved.buckets.map((b) => b.toText());
    assert.equal(buckets.length, 2);
    assert.equal(buckets[0], first);
    const second = buckets[1];
    assert.notEqual(second, first);
    assert.deepEqual(await cards(page), [
      ['first.bin', first],
      ['second.bin', second],
    ]);

    // A reload lists both buckets, oldest first, and reads from each.
    await page.reload();
    await ready(page);
    await page
      .waitForFunction(() => document.querySelectorAll('#gallery li.card').length === 2)
      .catch(async (e) => {
        throw new Error(`after the reload: ${JSON.stringify(await cards(page))}, status “${await page.textContent('#status')}”: ${e.message}`);
      });
    assert.deepEqual(await cards(page), [
      ['first.bin', first],
      ['second.bin', second],
    ]);
    await page.click('#gallery li.card:has(.name[title="second.bin"]) button.download');
    assert.match(await statusMatching(page, /second\.bin: .*downloaded/), /SHA-256 verified/);
    await shot('index-2-two-buckets');
    assert.deepEqual(errors, []);
  } finally {
    await admin.admin_set_bucket_state(location.uploadBucket, null);
    await context.close();
  }
});
