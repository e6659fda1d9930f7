// The last step of `npm run bindgen`: @icp-sdk/bindgen writes relative
// imports without an extension (`from "./declarations/backend.did"`),
// which a bundler resolves but Node's ES modules do not. The package is
// built with plain `tsc` (module NodeNext), so each relative specifier
// gets the `.js` of the file tsc emits for it. Nothing else changes;
// `check-bindings.mjs` applies the same step to fresh output before
// comparing, so the committed bindings stay exactly what `npm run bindgen`
// makes of `backend.did`.
//
// `node scripts/bindings-esm.mjs DIR` rewrites the .ts files under DIR.

import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const RELATIVE = /(\b(?:from|import)\s*)(["'])(\.{1,2}\/[^"'\n]*?)\2/g;

/** `source` with `.js` added to every relative import or export specifier that lacks it. */
export function withJsExtensions(source) {
  return source.replace(RELATIVE, (whole, keyword, quote, specifier) =>
    /\.(?:js|mjs|cjs|json)$/.test(specifier) ? whole : `${keyword}${quote}${specifier}.js${quote}`,
  );
}

function tsFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return tsFiles(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

/** Rewrites the `.ts` files under `dir` in place; returns those it changed. */
export function rewriteDir(dir) {
  const changed = [];
  for (const path of tsFiles(dir)) {
    const before = readFileSync(path, 'utf8');
    const after = withJsExtensions(before);
    if (after !== before) {
      writeFileSync(path, after);
      changed.push(path);
    }
  }
  return changed;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dir = process.argv[2];
  if (!dir) {
    console.error('usage: node scripts/bindings-esm.mjs DIR');
    process.exit(2);
  }
  const changed = rewriteDir(dir);
  console.log(`bindings: .js added to relative imports in ${changed.length} file(s) under ${dir}`);
}
