// Bundles the page into dist/: `npm run build`.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';

mkdirSync('dist', { recursive: true });
await build({
  entryPoints: ['src/main.ts'],
  bundle: true,
  format: 'esm',
  target: 'es2022',
  outfile: 'dist/main.js',
  sourcemap: true,
  // The page and the client share one copy of @icp-sdk/core (the client's):
  // two copies would make the client's `instanceof AgentError` miss the
  // page agent's errors.
  nodePaths: ['../ts/node_modules'],
  logLevel: 'warning',
});
copyFileSync('index.html', 'dist/index.html');
console.log('demo built in dist/');
