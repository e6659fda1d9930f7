// The demo page: a small gallery on the upload canister. A locally
// generated identity, capsules, an upload queue (two at a time, progress,
// abort, resume after a reload, thumbnails made in the browser), the
// capsule's memories page by page, a viewer through short-lived share
// links, share links with an expiry, delete, and the client's verified
// download.
//
// Query parameters:
// - `network`: the IC HTTP interface (the local network's `url`, or a
//   replica's; `bridge` is still accepted), default http://127.0.0.1:4943;
// - `canister`: the upload canister's id; or
// - `index`: an index canister's id: capsules are created through it, and
//   each capsule's memories are uploaded to, listed from, read from and
//   shared by the bucket canisters it names (one of the two is required);
// - `gateway`: the share links' base URL (the local network's `gateway`;
//   on mainnet `https://<canister>.icp0.io`, the default there; on an
//   index, each link names its bucket: `http://<bucket>.localhost:<port>`,
//   `https://<bucket>.icp0.io`); without it, nothing is shared and the
//   viewer reads by verified download;
// - optional `chunkBytes` and `inFlight` (passed to `upload`), and
//   `session` (seconds): sign in through a delegation that ends then, as
//   an Internet Identity session does.

import { HttpAgent } from '@icp-sdk/core/agent';
import { Principal } from '@icp-sdk/core/principal';
import {
  IndexClient,
  bucketShareUrl,
  createActor,
  resumableUploads,
  unwrap,
  upload,
  type Backend,
  type OpenUpload,
} from '../../ts/src/index';
import type { PageContext } from './context';
import { byId, el } from './dom';
import { Gallery } from './gallery';
import { loadOrCreateIdentity, signIn } from './identity';
import { explain, type Where } from './messages';
import { UploadQueue } from './queue';
import { Viewer } from './viewer';
import { DelegationExpired, isDelegationExpiry } from '../../ts/src/index';

const params = new URLSearchParams(location.search);
const indexId = (params.get('index') ?? '').trim();
const where: Where = {
  network: params.get('network') ?? params.get('bridge') ?? 'http://127.0.0.1:4943',
  // On an index, the canister errors name is the index's.
  canister: (params.get('canister') ?? '').trim() || indexId,
};

const statusLine = byId<HTMLParagraphElement>('status');
const capsules = byId<HTMLSelectElement>('capsules');
const fileInput = byId<HTMLInputElement>('file');
const uploadButton = byId<HTMLButtonElement>('upload');
const createButton = byId<HTMLButtonElement>('create-capsule');
const signInAgain = byId<HTMLButtonElement>('sign-in-again');

function say(text: string, kind: 'ok' | 'error' | '' = ''): void {
  statusLine.textContent = text;
  statusLine.className = kind;
}

function report(error: unknown): string {
  console.error(error);
  const sentence = explain(error, where);
  say(sentence, 'error');
  if (error instanceof DelegationExpired || isDelegationExpiry(error)) signInAgain.hidden = false;
  return sentence;
}

/** The page cannot start: one sentence, and the controls stay off. */
function fail(sentence: string): void {
  say(sentence, 'error');
  document.body.dataset.failed = 'true';
}

/** A whole positive number parameter, or undefined when absent. */
function numberParam(name: string): number | undefined {
  const raw = params.get(name);
  if (raw === null || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`The ${name} parameter must be a whole number above 0 (it is “${raw}”): fix it in the page’s address.`);
  return n;
}

function isMainnet(url: string): boolean {
  return /(^|\.)(icp0\.io|ic0\.app|icp-api\.io)$/.test(new URL(url).hostname);
}

function gatewayFor(canister: string): string | undefined {
  const given = params.get('gateway');
  if (given) {
    new URL(given); // Throws for a gateway that is not an absolute URL.
    return given;
  }
  return isMainnet(where.network) ? `https://${canister}.icp0.io` : undefined;
}

async function boot(): Promise<void> {
  let chunkBytes: number | undefined;
  let inFlight: number | undefined;
  let sessionSeconds: number | undefined;
  let gateway: string | undefined;
  try {
    chunkBytes = numberParam('chunkBytes');
    inFlight = numberParam('inFlight');
    sessionSeconds = numberParam('session');
  } catch (error) {
    fail((error as Error).message);
    return;
  }
  try {
    new URL(where.network);
  } catch {
    fail(`The network parameter “${where.network}” is not a URL: give the network’s address, e.g. ?network=http://127.0.0.1:4943.`);
    return;
  }
  try {
    gateway = gatewayFor(where.canister);
  } catch {
    fail(`The gateway parameter “${params.get('gateway')}” is not a URL: give the gateway’s address, e.g. &gateway=http://127.0.0.1:4945.`);
    return;
  }

  // The identity lives in this browser's storage: a reload keeps it, so the
  // same caller finds its capsules and unfinished uploads again.
  const user = loadOrCreateIdentity(localStorage, 'upload-demo-identity');
  let session = await signIn(user, sessionSeconds);
  const who = byId('who');
  const showWho = () =>
    who.replaceChildren(
      'Signed in locally as ',
      el('code', { textContent: user.getPrincipal().toText() }),
      session.expiresAt ? ` (this sign-in ends at ${session.expiresAt.toLocaleTimeString()})` : '',
    );
  showWho();

  if (!where.canister) {
    fail('No canister given: add ?canister=<canister id> to this page’s address (the local network prints it as “canister”).');
    return;
  }
  try {
    Principal.fromText(where.canister);
  } catch {
    fail(`“${where.canister}” is not a canister id: check the page’s ${indexId ? 'index' : 'canister'} parameter.`);
    return;
  }

  const agent = HttpAgent.createSync({ host: where.network, identity: session.identity });
  // On an index: its client, which locates capsules (an update call, once
  // per capsule) and makes the buckets' actors.
  const fleet = indexId ? new IndexClient({ agent, index: indexId, gateway }) : undefined;
  const actor: Backend | undefined = fleet ? undefined : createActor(where.canister, { agent });
  const actorOf = (bucket?: string): Backend => {
    if (bucket !== undefined && fleet) return fleet.bucket(bucket);
    if (!actor) throw new Error('bug: a memory of an index without its bucket');
    return actor;
  };
  const ctx: PageContext = {
    actorOf,
    bucketsOf: async (capsule) => (fleet ? (await fleet.locate(capsule)).buckets.map((b) => b.toText()) : [undefined]),
    upload: async (capsule, file, options) => {
      if (!fleet) return upload(actorOf(), capsule, file, options);
      const result = await fleet.upload(capsule, file, options);
      return { ...result, bucket: result.bucket.toText() };
    },
    where,
    gateway,
    gatewayOf: (bucket) =>
      gateway === undefined || bucket === undefined ? gateway : bucketShareUrl(gateway, bucket, '/').replace(/\/$/, ''),
    chunkBytes,
    inFlight,
    say,
    report,
  };

  /** The caller's capsules: `[id, name]`, from the canister, or from the index and its buckets. */
  const listCapsules = async (): Promise<{ capsule_id: bigint; name: string }[]> => {
    if (!fleet) return actorOf().capsules_mine(null, 100);
    const located = [];
    for await (const l of fleet.listCapsules()) located.push(l);
    // Names are the buckets' (the index keeps none): one query per bucket.
    const names = new Map<bigint, string>();
    for (const bucket of new Set(located.map((l) => l.uploadBucket.toText()))) {
      for (const c of await fleet.bucket(bucket).capsules_mine(null, 100)) names.set(c.capsule_id, c.name);
    }
    return located.map((l) => ({ capsule_id: l.capsuleId, name: names.get(l.capsuleId) ?? 'capsule' }));
  };

  /** The caller's unfinished uploads, on the canister or on every bucket of the caller's capsules. */
  const listUnfinished = async (): Promise<OpenUpload[]> => {
    if (!fleet) return resumableUploads(actorOf());
    const buckets = new Set<string>();
    for await (const l of fleet.listCapsules()) for (const b of l.buckets) buckets.add(b.toText());
    return (await Promise.all([...buckets].map((b) => resumableUploads(fleet.bucket(b))))).flat();
  };
  const viewer = new Viewer(ctx);
  const gallery = new Gallery(ctx, viewer);

  const selected = (): bigint | undefined => (capsules.value ? BigInt(capsules.value) : undefined);

  const refreshUnfinished = async (): Promise<void> => {
    const open = await listUnfinished();
    const box = byId('unfinished');
    if (open.length === 0) {
      box.replaceChildren();
      return;
    }
    // Names are the user's: text nodes only, never markup.
    const line = el('p', {}, 'Unfinished: ');
    open.forEach((u, i) => {
      if (i > 0) line.append(', ');
      line.append(el('b', { textContent: u.name }), ` (${u.received_chunks}/${u.expected_chunks} chunks)`);
    });
    line.append('. Choose the same file again to resume: only the missing chunks are sent.');
    box.replaceChildren(line);
  };

  const refreshCapsules = async (select?: bigint): Promise<void> => {
    const mine = await listCapsules();
    const keep = select ?? selected() ?? BigInt(localStorage.getItem('upload-demo-capsule') ?? '-1');
    capsules.replaceChildren(
      ...mine.map((c) => {
        const option = new Option(`${c.name} (#${c.capsule_id})`, c.capsule_id.toString());
        option.selected = c.capsule_id === keep;
        return option;
      }),
    );
    uploadButton.disabled = mine.length === 0;
    if (mine.length === 0) say('Create a capsule to start: memories are kept in capsules.');
    const capsule = selected();
    if (capsule !== undefined) localStorage.setItem('upload-demo-capsule', capsule.toString());
    await gallery.show(capsule);
  };

  const queue = new UploadQueue(
    ctx,
    (record) => gallery.added(record),
    () => void refreshUnfinished().catch((error) => console.warn('listing unfinished uploads', error)),
  );

  createButton.onclick = async () => {
    createButton.disabled = true;
    try {
      const name = byId<HTMLInputElement>('capsule-name').value.trim() || 'My capsule';
      if (fleet) {
        // The index places it on a bucket and says which.
        const created = await fleet.createCapsule(name);
        await refreshCapsules(created.capsuleId);
      } else {
        await refreshCapsules(unwrap('capsules_create', await actorOf().capsules_create(name)).capsule_id);
      }
      say(`Capsule “${name}” created.`, 'ok');
    } catch (error) {
      report(error);
    } finally {
      createButton.disabled = false;
    }
  };
  capsules.onchange = () => {
    const capsule = selected();
    if (capsule !== undefined) localStorage.setItem('upload-demo-capsule', capsule.toString());
    gallery.show(capsule).catch(report);
  };
  uploadButton.onclick = () => {
    const files = [...(fileInput.files ?? [])];
    const capsule = selected();
    if (files.length === 0 || capsule === undefined) {
      say('Choose a capsule and one or more files first.', 'error');
      return;
    }
    queue.add(files, capsule);
    fileInput.value = '';
    say(files.length === 1 ? `Uploading ${files[0].name}…` : `Uploading ${files.length} files, two at a time…`);
  };
  signInAgain.onclick = async () => {
    session = await signIn(user, sessionSeconds);
    agent.replaceIdentity(session.identity);
    showWho();
    signInAgain.hidden = true;
    say('Signed in again: choose the same file to continue an upload where it stopped.', 'ok');
  };

  try {
    // A local network's root key is fetched, as a dapp does against a local
    // replica; on mainnet the agent knows the IC's root key.
    if (!isMainnet(where.network)) await agent.fetchRootKey();
    await refreshCapsules();
    await refreshUnfinished();
  } catch (error) {
    report(error);
    document.body.dataset.failed = 'true';
    return;
  }
  createButton.disabled = false;
  document.body.dataset.ready = 'true';
}

boot().catch((error) => {
  report(error);
  document.body.dataset.failed = 'true';
});
