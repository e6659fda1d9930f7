// Fails when src/bindings is not what `npm run bindgen` makes of
// ../../backend.did today (@icp-sdk/bindgen, then the `.js` extensions of
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

function files(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

try {
  execFileSync(
    process.execPath,
    [
      join(here, 'node_modules/@icp-sdk/bindgen/dist/esm/cli/icp-bindgen.js'),
      '--did-file', join(here, '../../backend.did'),
      '--out-dir', fresh,
      '--declarations-typescript',
      '--force',
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  rewriteDir(fresh);
  const want = new Map(files(fresh).map((f) => [relative(fresh, f), readFileSync(f, 'utf8')]));
  const have = new Map(files(committed).map((f) => [relative(committed, f), readFileSync(f, 'utf8')]));
  const stale = [...new Set([...want.keys(), ...have.keys()])].filter((f) => want.get(f) !== have.get(f));
  if (stale.length > 0) {
    console.error(`bindings out of date with backend.did: ${stale.join(', ')}\nrun \`npm run bindgen\` in clients/ts`);
    process.exit(1);
  }
  console.log(`bindings match backend.did (${want.size} files)`);
} finally {
  rmSync(fresh, { recursive: true, force: true });
}
