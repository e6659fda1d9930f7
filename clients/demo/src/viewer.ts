// The viewer: a memory shown in the page through a short-lived share link
// (10 minutes, revoked again when the viewer closes), as the browser
// would show it from anywhere: <img>, <video>, <audio>, a sandboxed
// <iframe> for PDF and plain text, a download link for the rest. Without
// a gateway, the bytes come by the client's verified download instead.

import { download, share, shares, unshare, type Backend } from '../../ts/src/index';
import type { PageContext, PageMemory } from './context';
import { byId, el, formatBytes } from './dom';

/** How long a viewing link lives. */
export const VIEW_LINK_MS = 10 * 60 * 1000;

/** The link id in a share link's path `/s/<memory_id>/<link_id>/<key>`. */
export function linkIdOf(url: string): bigint | undefined {
  const m = /\/s\/\d+\/(\d+)\//.exec(new URL(url).pathname);
  return m ? BigInt(m[1]) : undefined;
}

export class Viewer {
  private readonly section = byId<HTMLElement>('viewer');
  private readonly title = byId<HTMLElement>('viewer-title');
  private readonly stage = byId<HTMLElement>('viewer-stage');
  private readonly note = byId<HTMLElement>('viewer-note');
  /** What to undo on close: a link to revoke, an object URL to release. */
  private linkId: bigint | undefined;
  /** The canister that made that link. */
  private linkActor: Backend | undefined;
  private objectUrl: string | undefined;
  /** Bumped by each open and close, so a slow open cannot show itself late. */
  private generation = 0;

  constructor(private readonly ctx: PageContext) {
    byId<HTMLButtonElement>('viewer-close').onclick = () => void this.close();
  }

  /** The memory shown, if any. */
  get showing(): bigint | undefined {
    const id = this.section.dataset.memoryId;
    return id === undefined ? undefined : BigInt(id);
  }

  async open(record: PageMemory): Promise<void> {
    await this.close();
    const generation = ++this.generation;
    this.section.hidden = false;
    this.section.dataset.memoryId = record.memory_id.toString();
    this.title.textContent = record.name;
    this.stage.replaceChildren(el('p', {}, 'Opening…'));
    this.note.textContent = '';
    this.section.scrollIntoView({ block: 'nearest' });
    // The memory's own canister (its bucket on an index) makes and serves the link.
    const actor = this.ctx.actorOf(record.bucket);
    const gateway = this.ctx.gatewayOf(record.bucket);
    try {
      let url: string;
      if (gateway) {
        url = await share(actor, record.memory_id, {
          gateway,
          expiresAt: new Date(Date.now() + VIEW_LINK_MS),
        });
        const linkId = linkIdOf(url);
        if (generation !== this.generation) {
          if (linkId !== undefined) void unshare(actor, linkId).catch(() => undefined);
          return;
        }
        this.linkId = linkId;
        this.linkActor = actor;
        await this.untilReady(record, linkId, generation);
        this.note.replaceChildren(
          'Shown through a share link that ends in 10 minutes and is revoked when you close the viewer: ',
          el('a', { href: url, target: '_blank', rel: 'noopener noreferrer', textContent: 'open it in a new tab' }),
          '.',
        );
      } else {
        const { blob } = await download(actor, record.memory_id, { inFlight: this.ctx.inFlight });
        if (generation !== this.generation) return;
        url = this.objectUrl = URL.createObjectURL(blob);
        this.note.textContent = `Read by the client and checked against its SHA-256 (${formatBytes(blob.size)}); no share link was made (the page has no gateway parameter).`;
      }
      if (generation !== this.generation) return;
      this.stage.replaceChildren(this.element(record, url));
      this.section.dataset.state = 'open';
    } catch (error) {
      if (generation !== this.generation) return;
      this.stage.replaceChildren();
      this.note.textContent = this.ctx.report(error);
      this.section.dataset.state = 'failed';
    }
  }

  /** Waits while a long memory's link is still being certified (`ready`). */
  private async untilReady(record: PageMemory, linkId: bigint | undefined, generation: number): Promise<void> {
    for (let i = 0; i < 120 && generation === this.generation; i++) {
      const link = (await shares(this.ctx.actorOf(record.bucket), record.memory_id)).find((l) => l.link_id === linkId);
      if (!link || link.ready) return;
      this.stage.replaceChildren(el('p', {}, 'Preparing the link (a long file is certified in steps)…'));
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  private element(record: PageMemory, url: string): HTMLElement {
    const type = record.mime_type.toLowerCase().split(';')[0].trim();
    if (type.startsWith('image/')) return el('img', { src: url, alt: record.name });
    if (type.startsWith('video/')) {
      // Muted, so the browser lets it start by itself; the controls unmute it.
      return el('video', { src: url, controls: true, autoplay: true, muted: true, playsInline: true });
    }
    if (type.startsWith('audio/')) return el('audio', { src: url, controls: true, autoplay: true });
    if (type === 'application/pdf' || type === 'text/plain') {
      // Sandboxed: no script, no forms, no navigation of this page.
      const frame = el('iframe', { src: url, title: record.name });
      frame.setAttribute('sandbox', '');
      frame.setAttribute('referrerpolicy', 'no-referrer');
      return frame;
    }
    return el(
      'p',
      {},
      el('a', { href: url, download: record.name, textContent: `Download ${record.name}` }),
      ` (${record.mime_type || 'unknown type'}, ${formatBytes(record.byte_len)}: not shown in the page)`,
    );
  }

  async close(): Promise<void> {
    this.generation++;
    for (const media of this.stage.querySelectorAll('video, audio')) (media as HTMLMediaElement).pause();
    this.stage.replaceChildren();
    this.note.textContent = '';
    this.section.hidden = true;
    delete this.section.dataset.state;
    delete this.section.dataset.memoryId;
    if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
    this.objectUrl = undefined;
    const linkId = this.linkId;
    const actor = this.linkActor;
    this.linkId = undefined;
    this.linkActor = undefined;
    if (linkId !== undefined && actor !== undefined) {
      // Best effort: the link ends in 10 minutes anyway.
      await unshare(actor, linkId).catch((error) => console.warn('revoking the viewing link', error));
    }
  }
}
