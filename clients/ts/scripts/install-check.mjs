// `npm run check:install`: the package as a dapp gets it. Packs
// clients/ts (`npm pack`, whose `prepack` builds dist/ with tsc), makes a
// new empty project in the system's temp folder, installs the tarball
// there with `@icp-sdk/core` and `typescript` from the npm registry,
// type-checks a small `main.ts` that imports the package by name (strict,
// module NodeNext), compiles it, and runs it with node against a local
// network this script starts: a signed-in Ed25519 user creates a capsule,
// uploads 3 MB, downloads it, compares SHA-256, shares it and fetches the
// link from the network's gateway. Exits non-zero, saying where, on any
// failure.
//
// UPLOAD_BRIDGE and BACKEND_WASM name prebuilt binaries (as for
// `npm test`); without them the script builds both with cargo first.
// KEEP_INSTALL_CHECK=1 keeps the temp folders.

import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('..', import.meta.url));
const repo = fileURLToPath(new URL('../../../', import.meta.url));
const NETWORK = process.env.UPLOAD_BRIDGE ?? join(repo, 'target/debug/upload-bridge');
const WASM = process.env.BACKEND_WASM ?? join(repo, 'target/canister-wasm/wasm32-unknown-unknown/release/backend.wasm');
const CORE_VERSION = '6.1.0';
const UPLOAD_BYTES = 3 * 1024 * 1024;

const pkg = JSON.parse(readFileSync(join(here, 'package.json'), 'utf8'));
const lock = JSON.parse(readFileSync(join(here, 'package-lock.json'), 'utf8'));
/** The version clients/ts itself is locked to. */
const locked = (name) => {
  const version = lock.packages?.[`node_modules/${name}`]?.version;
  if (!version) throw new Error(`${name} is not in clients/ts/package-lock.json`);
  return version;
};

class CheckFailed extends Error {}
const fail = (message) => {
  throw new CheckFailed(message);
};

/** Runs a command with its output shown; fails unless it exits 0. */
function run(command, args, options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'inherit', 'inherit'], ...options });
    const timer = options.timeoutMs
      ? setTimeout(() => {
          child.kill();
          reject(new CheckFailed(`${command} ${args.join(' ')}: no answer within ${options.timeoutMs / 1000} s`));
        }, options.timeoutMs)
      : undefined;
    child.once('error', (e) => reject(new CheckFailed(`${command}: ${e.message}`)));
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new CheckFailed(`${command} ${args.join(' ')} exited with ${code ?? signal}`));
    });
  });
}

let stepName = '';
function step(name) {
  stepName = name;
  console.log(`\ninstall check: ${name}`);
}

/** Starts the local network; resolves with its JSON line and a stop function. */
async function startNetwork() {
  for (const [what, path] of [
    ['upload-bridge', NETWORK],
    ['backend.wasm', WASM],
  ]) {
    if (!existsSync(path)) fail(`${what} not found at ${path}`);
  }
  const child = spawn(NETWORK, ['--wasm', WASM], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  const first = await new Promise((resolve, reject) => {
    child.once('error', (e) => reject(new CheckFailed(`upload-bridge: ${e.message}`)));
    child.once('exit', (code) => reject(new CheckFailed(`upload-bridge exited with ${code} before it listened`)));
    lines.once('line', resolve);
  });
  // Its stdout is read to the end so that nothing it writes can block it.
  lines.on('line', () => undefined);
  const info = JSON.parse(first);
  for (const key of ['url', 'gateway', 'canister', 'root_key']) {
    if (typeof info[key] !== 'string') fail(`upload-bridge's JSON line has no "${key}": ${first}`);
  }
  return { info, stop: () => child.kill() };
}

const MAIN_TS = `// Written by clients/ts/scripts/install-check.mjs: a dapp's own code,
// importing the installed package by name.
import { createHash } from 'node:crypto';
import { HttpAgent } from '@icp-sdk/core/agent';
import { Ed25519KeyIdentity } from '@icp-sdk/core/identity';
import { createActor, download, share, upload, UploadFailed, type Backend, type UploadProgress } from '@upload-canister/client';

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(\`\${name} is not set\`);
  return value;
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

const host = env('NETWORK_URL');
const gateway = env('NETWORK_GATEWAY');
const canisterId = env('NETWORK_CANISTER');
const rootKey = Uint8Array.from(Buffer.from(env('NETWORK_ROOT_KEY'), 'hex'));

// A signed-in user who controls nothing: a fresh Ed25519 key.
const identity = Ed25519KeyIdentity.generate();
const agent = await HttpAgent.create({ host, identity, rootKey });
const actor: Backend = createActor(canisterId, { agent });

const capsule = await actor.capsules_create('install-check');
if (capsule.__kind__ === 'Err') throw new UploadFailed(capsule.Err, 'capsules_create');
const capsuleId: bigint = capsule.Ok.capsule_id;

const data = new Uint8Array(${UPLOAD_BYTES});
for (let i = 0, x = 7; i < data.length; i++) {
  x = (x * 1103515245 + 12345) >>> 0;
  data[i] = x >>> 24;
}
let last: UploadProgress | undefined;
const memory = await upload(actor, capsuleId, new Blob([data]), { name: 'install-check.bin', onProgress: (p) => (last = p) });
if (last?.confirmedBytes !== data.length) throw new Error(\`progress ended at \${last?.confirmedBytes} of \${data.length} bytes\`);
console.log(\`uploaded \${data.length} bytes as memory \${memory.memory_id} in \${memory.chunkCalls} chunk calls\`);

const { blob } = await download(actor, memory.memory_id);
const back = new Uint8Array(await blob.arrayBuffer());
if (sha256(back) !== sha256(data)) throw new Error(\`downloaded SHA-256 \${sha256(back)}, uploaded \${sha256(data)}\`);
console.log(\`downloaded \${back.length} bytes, SHA-256 \${sha256(back)} as uploaded\`);

const url = await share(actor, memory.memory_id, { gateway });
const served = await fetch(url);
const body = new Uint8Array(await served.arrayBuffer());
if (served.status !== 200 || sha256(body) !== sha256(data)) {
  throw new Error(\`\${url} answered \${served.status} with \${body.length} bytes, SHA-256 \${sha256(body)}\`);
}
console.log(\`shared: \${url} answers 200 with the same bytes\`);

// The package's types are the real ones, not any: these must not compile.
export function mistakes(): void {
  // @ts-expect-error a capsule id is a bigint
  void upload(actor, 'capsule', data);
  // @ts-expect-error share needs the gateway's URL
  void share(actor, memory.memory_id, {});
  // @ts-expect-error memory ids are bigints
  void download(actor, 1);
}
`;

const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    lib: ['ES2022', 'DOM'],
    types: ['node'],
    strict: true,
    skipLibCheck: false,
    noEmitOnError: true,
    outDir: 'out',
  },
  files: ['main.ts'],
};

const temps = [];
let network;
let ok = false;
try {
  if (!process.env.UPLOAD_BRIDGE || !process.env.BACKEND_WASM) {
    step('building upload-bridge and the release backend.wasm (cargo, as `npm test` does)');
    await run('cargo', ['build', '--quiet', '-p', 'upload-bridge'], { cwd: here });
    await run(
      'cargo',
      ['build', '--quiet', '-p', 'backend', '--release', '--target', 'wasm32-unknown-unknown', '--target-dir', '../../target/canister-wasm'],
      { cwd: here },
    );
  }

  step(`npm pack of ${pkg.name}@${pkg.version} (prepack builds dist/ with tsc)`);
  const packDir = mkdtempSync(join(tmpdir(), 'upload-client-pack-'));
  temps.push(packDir);
  await run('npm', ['pack', '--pack-destination', packDir], { cwd: here });
  const tarballs = readdirSync(packDir).filter((f) => f.endsWith('.tgz'));
  if (tarballs.length !== 1) fail(`npm pack made ${tarballs.length} tarballs in ${packDir}`);
  const tarball = join(packDir, tarballs[0]);
  const files = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .map((f) => f.replace(/^package\//, ''));
  for (const need of ['package.json', 'dist/index.js', 'dist/index.d.ts', 'dist/bindings/backend.js']) {
    if (!files.includes(need)) fail(`${tarballs[0]} has no ${need}`);
  }
  const stray = files.filter((f) => !f.startsWith('dist/') && !/^(package\.json|README(\.md)?|LICENSE)$/.test(f));
  if (stray.length > 0) fail(`${tarballs[0]} holds files outside dist/: ${stray.join(', ')}`);
  const tools = files.filter((f) => /(^|\/)(test|support)(\/|\.|$)/.test(f));
  if (tools.length > 0) fail(`${tarballs[0]} holds test tools: ${tools.join(', ')}`);
  console.log(`${tarball}: ${files.length} files, all under dist/ but package.json`);

  const project = realpathSync(mkdtempSync(join(tmpdir(), 'upload-client-install-')));
  temps.push(project);
  const inside = relative(realpathSync(repo), project);
  if (!inside.startsWith('..') && !inside.startsWith(sep)) fail(`${project} is inside the repository`);
  const typescript = locked('typescript');
  const nodeTypes = locked('@types/node');
  step(`a new empty project in ${project}: npm install the tarball, @icp-sdk/core@${CORE_VERSION}, typescript@${typescript}, @types/node@${nodeTypes}`);
  writeFileSync(
    join(project, 'package.json'),
    `${JSON.stringify({ name: 'install-check', version: '0.0.0', private: true, type: 'module' }, null, 2)}\n`,
  );
  await run(
    'npm',
    [
      'install',
      '--no-audit',
      '--no-fund',
      tarball,
      `@icp-sdk/core@${CORE_VERSION}`,
      `typescript@${typescript}`,
      `@types/node@${nodeTypes}`,
    ],
    { cwd: project },
  );
  const installed = join(project, 'node_modules/@upload-canister/client');
  if (!existsSync(join(installed, 'dist/index.js'))) fail(`${installed} has no dist/index.js`);
  if (existsSync(join(installed, 'node_modules/@icp-sdk/core'))) {
    fail('the package got its own copy of @icp-sdk/core: it must share the dapp\'s (a peer dependency)');
  }
  const core = JSON.parse(readFileSync(join(project, 'node_modules/@icp-sdk/core/package.json'), 'utf8'));
  if (core.version !== CORE_VERSION) fail(`@icp-sdk/core ${core.version} installed, not ${CORE_VERSION}`);
  if (!existsSync(join(project, 'node_modules/hash-wasm/package.json'))) fail('hash-wasm (a dependency) was not installed');
  console.log(`installed: one @icp-sdk/core (${core.version}), shared by the dapp and the client; hash-wasm with it`);

  step('main.ts imports the package by name: type-check and compile with the project\'s tsc (strict, module NodeNext)');
  writeFileSync(join(project, 'main.ts'), MAIN_TS);
  writeFileSync(join(project, 'tsconfig.json'), `${JSON.stringify(TSCONFIG, null, 2)}\n`);
  await run(process.execPath, [join(project, 'node_modules/typescript/bin/tsc'), '-p', project], { cwd: project });
  if (!existsSync(join(project, 'out/main.js'))) fail('tsc wrote no out/main.js');
  console.log('type-checked and compiled: out/main.js');

  step('start the local network (upload-bridge with the release backend.wasm)');
  network = await startNetwork();
  console.log(`network ${network.info.url}, gateway ${network.info.gateway}, canister ${network.info.canister}`);

  step('node out/main.js: capsules_create, upload 3 MB, download, compare SHA-256, share, fetch the link');
  await run(process.execPath, [join(project, 'out/main.js')], {
    cwd: project,
    timeoutMs: 300_000,
    env: {
      ...process.env,
      NETWORK_URL: network.info.url,
      NETWORK_GATEWAY: network.info.gateway,
      NETWORK_CANISTER: network.info.canister,
      NETWORK_ROOT_KEY: network.info.root_key,
    },
  });
  ok = true;
  console.log(`\ninstall check passed: ${pkg.name}@${pkg.version} installs from its tarball, type-checks and runs in a new project`);
} catch (error) {
  console.error(`\ninstall check FAILED at "${stepName}": ${error instanceof CheckFailed ? error.message : error?.stack ?? error}`);
  process.exitCode = 1;
} finally {
  network?.stop();
  if (ok && !process.env.KEEP_INSTALL_CHECK) {
    for (const dir of temps) rmSync(dir, { recursive: true, force: true });
  } else if (temps.length > 0) {
    console.error(`left for inspection: ${temps.join(', ')}`);
  }
}
