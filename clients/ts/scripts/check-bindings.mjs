// Fails when src/bindings is not what `npm run bindgen` makes of
// ../../backend.did (the bucket) and ../../index/index.did (the index)
// today (@icp-sdk/bindgen for each, then the `.js` extensions of
// scripts/bindings-esm.mjs). Fix with `npm run bindgen`.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rewriteDir } from './bindings-esm.mjs';

const here = fileURLToPath(new URL('..', import.meta.url));
const committed = join(here, 'src/bindings');
const fresh = mkdtempSync(join(tmpdir(), 'bindings-'));
/** Each interface the client binds: the bucket's and the index's. */
const DID_FILES = ['../../backend.did', '../../index/index.did'];

function files(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

try {
  // The same .did files, in the same order, as `npm run bindgen`.
  for (const did of DID_FILES) {
    execFileSync(
      process.execPath,
      [
        join(here, 'node_modules/@icp-sdk/bindgen/dist/esm/cli/icp-bindgen.js'),
        '--did-file', join(here, did),
        '--out-dir', fresh,
        '--declarations-typescript',
        '--force',
      ],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
  }
  rewriteDir(fresh);
  const want = new Map(files(fresh).map((f) => [relative(fresh, f), readFileSync(f, 'utf8')]));
  const have = new Map(files(committed).map((f) => [relative(committed, f), readFileSync(f, 'utf8')]));
  const stale = [...new Set([...want.keys(), ...have.keys()])].filter((f) => want.get(f) !== have.get(f));
  if (stale.length > 0) {
    console.error(`bindings out of date with backend.did or index/index.did: ${stale.join(', ')}\nrun \`npm run bindgen\` in clients/ts`);
    process.exit(1);
  }
  console.log(`bindings match backend.did and index/index.did (${want.size} files)`);
} finally {
  rmSync(fresh, { recursive: true, force: true });
}
