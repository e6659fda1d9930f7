// The demo page: a locally generated identity, capsules, an upload with a
// progress bar that resumes after a reload, the capsule's memories, and a
// verified download. Query parameters: `network` (the IC HTTP interface:
// the local network's URL, or a replica's), `canister` (its id), optional
// `chunkBytes` and `inFlight`.

import { HttpAgent } from '@icp-sdk/core/agent';
import { loadOrCreateIdentity } from './identity';
import {
  createActor,
  download,
  resumableUploads,
  upload,
  UploadAborted,
  UploadFailed,
  type Backend,
  type UploadProgress,
} from '../../ts/src/index';

const params = new URLSearchParams(location.search);
const networkUrl = params.get('network') ?? params.get('bridge') ?? 'http://127.0.0.1:4943';
const canisterId = params.get('canister') ?? '';
const chunkBytes = params.has('chunkBytes') ? Number(params.get('chunkBytes')) : undefined;
const inFlight = params.has('inFlight') ? Number(params.get('inFlight')) : undefined;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const capsules = $<HTMLSelectElement>('capsules');
const fileInput = $<HTMLInputElement>('file');
const uploadButton = $<HTMLButtonElement>('upload');
const abortButton = $<HTMLButtonElement>('abort');
const progressBar = $<HTMLProgressElement>('progress');
const progressText = $<HTMLParagraphElement>('progress-text');
const statusLine = $<HTMLParagraphElement>('status');

function say(text: string, kind: 'ok' | 'error' | '' = ''): void {
  statusLine.textContent = text;
  statusLine.className = kind;
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function formatSeconds(s: number | undefined): string {
  if (s === undefined || !Number.isFinite(s)) return '…';
  return s < 90 ? `${Math.ceil(s)} s` : `${Math.ceil(s / 60)} min`;
}

function describeError(error: unknown): string {
  if (error instanceof UploadFailed) return `The canister said ${error.kind}: ${error.message}`;
  if (error instanceof UploadAborted) return 'Upload aborted.';
  return error instanceof Error ? error.message : String(error);
}

// The identity lives in this browser's storage: a reload keeps it, so the
// same caller finds its capsules and unfinished uploads again.
const identity = loadOrCreateIdentity(localStorage, 'upload-demo-identity');
// A local network's root key is fetched, as a dapp does against a local
// replica; on mainnet the agent knows the IC's root key.
const agent = HttpAgent.createSync({ host: networkUrl, identity });
const actor: Backend = createActor(canisterId, { agent });
{
  const who = $('who');
  const code = document.createElement('code');
  code.textContent = identity.getPrincipal().toText();
  who.replaceChildren('Signed in locally as ', code);
}

function isMainnet(url: string): boolean {
  return /(^|\.)(icp0\.io|ic0\.app|icp-api\.io)$/.test(new URL(url).hostname);
}

function selectedCapsule(): bigint | undefined {
  return capsules.value ? BigInt(capsules.value) : undefined;
}

async function refreshCapsules(select?: bigint): Promise<void> {
  const mine = await actor.capsules_mine(null, 100);
  const keep = select ?? selectedCapsule() ?? BigInt(localStorage.getItem('upload-demo-capsule') ?? '-1');
  capsules.replaceChildren(
    ...mine.map((c) => {
      const option = new Option(`${c.name} (#${c.capsule_id})`, c.capsule_id.toString());
      option.selected = c.capsule_id === keep;
      return option;
    }),
  );
  uploadButton.disabled = mine.length === 0;
  await refreshMemories();
}

async function refreshUnfinished(): Promise<void> {
  const open = await resumableUploads(actor);
  const box = $('unfinished');
  if (open.length === 0) {
    box.replaceChildren();
    return;
  }
  // Names are the user's: text nodes only, never markup.
  const line = document.createElement('p');
  line.append('Unfinished: ');
  open.forEach((u, i) => {
    if (i > 0) line.append(', ');
    const name = document.createElement('b');
    name.textContent = u.name;
    line.append(name, ` (${u.received_chunks}/${u.expected_chunks} chunks)`);
  });
  line.append('. Choose the same file again to resume: only the missing chunks are sent.');
  box.replaceChildren(line);
}

async function refreshMemories(): Promise<void> {
  const capsule = selectedCapsule();
  const list = $<HTMLUListElement>('memories');
  if (capsule === undefined) {
    list.replaceChildren();
    return;
  }
  localStorage.setItem('upload-demo-capsule', capsule.toString());
  const page = await actor.memories_list({ capsule_id: capsule, after: undefined, limit: 100 });
  if (page.__kind__ === 'Err') throw new UploadFailed(page.Err, 'memories_list');
  list.replaceChildren(
    ...page.Ok.memories.map((m) => {
      const item = document.createElement('li');
      item.dataset.memoryId = m.memory_id.toString();
      item.append(`${m.name} · ${formatBytes(Number(m.byte_len))} `);
      const button = document.createElement('button');
      button.textContent = 'Download and check';
      button.onclick = () => void downloadAndCheck(m.memory_id, item);
      item.append(button);
      return item;
    }),
  );
}

async function downloadAndCheck(memoryId: bigint, item: HTMLLIElement): Promise<void> {
  say(`Downloading memory ${memoryId}…`);
  try {
    const { blob, record } = await download(actor, memoryId);
    const link = document.createElement('a');
    link.href = URL.createObjectURL(blob);
    link.download = record.name;
    link.textContent = 'save';
    item.append(' ', link);
    say(`Memory ${memoryId}: ${formatBytes(blob.size)} downloaded, SHA-256 verified.`, 'ok');
  } catch (error) {
    say(describeError(error), 'error');
  }
}

let controller: AbortController | undefined;

async function startUpload(): Promise<void> {
  const file = fileInput.files?.[0];
  const capsule = selectedCapsule();
  if (!file || capsule === undefined) {
    say('Choose a capsule and a file first.', 'error');
    return;
  }
  controller = new AbortController();
  uploadButton.disabled = true;
  abortButton.disabled = false;
  say(`Uploading ${file.name}…`);
  progressBar.value = 0;
  progressText.textContent = 'Starting…';
  const show = (p: UploadProgress) => {
    const percent = p.totalBytes === 0 ? 100 : Math.floor((100 * p.confirmedBytes) / p.totalBytes);
    progressBar.value = percent;
    const resumed = p.resumedBytes > 0 ? ` · ${formatBytes(p.resumedBytes)} were already there` : '';
    progressText.textContent =
      `${percent} % · ${formatBytes(p.confirmedBytes)} of ${formatBytes(p.totalBytes)} · ` +
      `${formatBytes(p.bytesPerSecond)}/s · ${formatSeconds(p.secondsLeft)} left${resumed}`;
  };
  try {
    const result = await upload(actor, capsule, file, { signal: controller.signal, onProgress: show, chunkBytes, inFlight });
    progressBar.value = 100;
    progressText.textContent =
      `100 % · ${formatBytes(Number(result.byte_len))} stored · ` +
      `${result.chunkCalls} chunks sent, ${result.resumedChunks} resumed`;
    say(`Stored as memory ${result.memory_id}.`, 'ok');
  } catch (error) {
    say(describeError(error), 'error');
  } finally {
    uploadButton.disabled = false;
    abortButton.disabled = true;
    await refreshUnfinished();
    await refreshMemories();
  }
}

$('create-capsule').onclick = async () => {
  const created = await actor.capsules_create($<HTMLInputElement>('capsule-name').value || 'My capsule');
  if (created.__kind__ === 'Err') {
    say(describeError(new UploadFailed(created.Err, 'capsules_create')), 'error');
    return;
  }
  await refreshCapsules(created.Ok.capsule_id);
  say(`Capsule ${created.Ok.capsule_id} created.`, 'ok');
};
capsules.onchange = () => void refreshMemories();
uploadButton.onclick = () => void startUpload();
abortButton.onclick = () => controller?.abort();

try {
  if (!isMainnet(networkUrl)) await agent.fetchRootKey();
  await refreshCapsules();
  await refreshUnfinished();
  document.body.dataset.ready = 'true';
} catch (error) {
  say(`Cannot reach the canister at ${networkUrl}: ${describeError(error)}`, 'error');
}
