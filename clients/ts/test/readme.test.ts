// The README's "From a frontend" example is `examples/frontend.ts`, run
// here against the local network as it is printed there.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { uploadAndReadBack } from '../examples/frontend';
import { type NetworkProcess, freshCanister, newIdentity, sameBytes, startNetwork, testBytes } from './support';

let net: NetworkProcess;
before(async () => {
  net = await startNetwork();
});
after(() => net.stop());

test("the README's frontend example is examples/frontend.ts, word for word", () => {
  const readme = readFileSync(fileURLToPath(new URL('../../../README.md', import.meta.url)), 'utf8');
  const example = readFileSync(fileURLToPath(new URL('../examples/frontend.ts', import.meta.url)), 'utf8');
  // The README imports the package by name; the file, from its sources.
  const printed = example.replace("from '../src/index'", "from '@upload-canister/client'");
  assert.ok(readme.includes('```ts\n' + printed + '```'), 'README.md does not show examples/frontend.ts as it is');
});

test('the example uploads and reads back a file byte-exact', async () => {
  const canister = await freshCanister(net);
  const data = testBytes(3 * 1024 * 1024 + 17, 5);
  const seen: number[] = [];
  const blob = await uploadAndReadBack(net.url, canister, newIdentity(), new Blob([data as Uint8Array<ArrayBuffer>]), (p) =>
    seen.push(p.confirmedBytes),
  );
  assert.ok(sameBytes(new Uint8Array(await blob.arrayBuffer()), data));
  assert.equal(seen.at(-1), data.length);
});
