// The gallery: a capsule's memories as a grid of cards (thumbnail or type
// icon, name, size, date; view, share, download and check, delete), a
// page of `memories_list` at a time with a "More" button while
// `next_after` says more follow.

import { deleteMemory, download, hex, unwrap, type MemoryRecord } from '../../ts/src/index';
import type { PageContext } from './context';
import { byId, el, formatBytes, formatTime } from './dom';
import { sharePanel } from './sharing';
import { thumbnailOf, thumbnailUrl, typeIcon } from './thumbs';
import type { Viewer } from './viewer';

/** Memories asked for per page (the canister may return fewer: it cuts pages by reply size). */
export const PAGE_SIZE = 100;

interface Card {
  record: MemoryRecord;
  item: HTMLLIElement;
  thumbUrl: string | undefined;
}

export class Gallery {
  private readonly list = byId<HTMLUListElement>('gallery');
  private readonly moreButton = byId<HTMLButtonElement>('more');
  private readonly count = byId<HTMLElement>('gallery-count');
  private readonly cards = new Map<bigint, Card>();
  private capsule: bigint | undefined;
  /** Where the next page starts; undefined once every page is shown. */
  private nextAfter: bigint | undefined;
  private complete = true;
  /** Bumped by each `show`, so pages of an earlier capsule are dropped. */
  private generation = 0;

  constructor(
    private readonly ctx: PageContext,
    private readonly viewer: Viewer,
  ) {
    this.moreButton.onclick = () => void this.more().catch((error) => ctx.report(error));
  }

  /** Shows the first page of `capsule`'s memories. */
  async show(capsule: bigint | undefined): Promise<void> {
    this.generation++;
    for (const card of this.cards.values()) this.release(card);
    this.cards.clear();
    this.list.replaceChildren();
    this.capsule = capsule;
    this.nextAfter = undefined;
    this.complete = capsule === undefined;
    this.moreButton.hidden = true;
    this.updateCount();
    if (capsule !== undefined) await this.more();
  }

  /** Appends the next page. */
  async more(): Promise<void> {
    const capsule = this.capsule;
    if (capsule === undefined || this.complete) return;
    const generation = this.generation;
    this.moreButton.disabled = true;
    try {
      const page = unwrap(
        'memories_list',
        await this.ctx.actor.memories_list({ capsule_id: capsule, after: this.nextAfter, limit: PAGE_SIZE }),
      );
      if (generation !== this.generation) return;
      for (const record of page.memories) this.append(record);
      this.nextAfter = page.next_after;
      this.complete = page.next_after === undefined;
    } finally {
      this.moreButton.disabled = false;
      this.moreButton.hidden = this.complete;
      this.updateCount();
    }
  }

  /** A memory stored just now: shown when the last page is (it comes last). */
  added(record: MemoryRecord): void {
    if (record.capsule_id !== this.capsule || !this.complete) return;
    const card = this.cards.get(record.memory_id);
    if (card) {
      this.replace(card, record);
    } else {
      this.append(record);
    }
    this.updateCount();
  }

  private updateCount(): void {
    const n = this.cards.size;
    this.count.textContent =
      this.capsule === undefined
        ? 'No capsule chosen.'
        : n === 0 && this.complete
          ? 'No memories yet: upload some files.'
          : `${n} ${n === 1 ? 'memory' : 'memories'}${this.complete ? '' : ' shown; more follow'}.`;
    this.list.dataset.count = String(n);
  }

  private append(record: MemoryRecord): void {
    if (this.cards.has(record.memory_id)) return;
    const card = this.card(record);
    this.cards.set(record.memory_id, card);
    this.list.append(card.item);
  }

  private replace(card: Card, record: MemoryRecord): void {
    const fresh = this.card(record);
    this.release(card);
    card.item.replaceWith(fresh.item);
    this.cards.set(record.memory_id, fresh);
  }

  private release(card: Card): void {
    if (card.thumbUrl) URL.revokeObjectURL(card.thumbUrl);
  }

  private remove(memoryId: bigint): void {
    const card = this.cards.get(memoryId);
    if (!card) return;
    this.release(card);
    card.item.remove();
    this.cards.delete(memoryId);
    this.updateCount();
  }

  private card(record: MemoryRecord): Card {
    const thumbnail = thumbnailOf(record);
    const thumbUrl = thumbnail ? thumbnailUrl(thumbnail) : undefined;
    const icon = typeIcon(record.mime_type, record.name);
    const picture = thumbUrl
      ? el('img', { src: thumbUrl, alt: '', decoding: 'async' })
      : el('div', { className: 'icon', dataset: { kind: icon.kind }, textContent: icon.label });
    const note = el('div', { className: 'note', attrs: { role: 'status' } });
    const say = (text: string, error = false) => {
      note.textContent = text;
      note.className = error ? 'note error' : 'note';
    };
    const sharing = !!this.ctx.gateway;
    const view = el('button', { className: 'view', textContent: 'View' });
    const shareButton = el('button', {
      className: 'share-button',
      textContent: 'Share',
      disabled: !sharing,
      title: sharing ? 'Make a link anyone can open' : 'Sharing needs the page’s gateway parameter',
    });
    const get = el('button', { className: 'download', textContent: 'Download' });
    const remove = el('button', { className: 'delete', textContent: 'Delete' });
    const extra = el('div');
    const item = el(
      'li',
      { className: 'card', dataset: { memoryId: record.memory_id.toString(), thumbnail: thumbnail ? 'yes' : 'no' } },
      el('div', { className: 'thumb' }, picture),
      el('div', { className: 'name', title: record.name, textContent: record.name }),
      el('div', { className: 'meta' }, `${formatBytes(record.byte_len)} · ${formatTime(record.created_at)}`),
      el('div', { className: 'actions' }, view, shareButton, get, remove),
      note,
      extra,
    );

    view.onclick = () => void this.viewer.open(record);
    shareButton.onclick = () => {
      if (extra.firstChild) {
        extra.replaceChildren();
        item.classList.remove('sharing');
        return;
      }
      item.classList.add('sharing');
      extra.replaceChildren(sharePanel(this.ctx, record, say));
    };
    get.onclick = async () => {
      get.disabled = true;
      say('Downloading…');
      try {
        const { blob } = await download(this.ctx.actor, record.memory_id, {
          inFlight: this.ctx.inFlight,
          onProgress: (got, total) => say(`Downloading… ${total === 0 ? 100 : Math.floor((100 * got) / total)} %`),
        });
        const digest = hex(record.sha256);
        const link = el('a', { href: URL.createObjectURL(blob), download: record.name, textContent: 'save again' });
        say(`SHA-256 checked: ${digest.slice(0, 12)}… matches the upload.`);
        note.append(' ', link);
        this.ctx.say(`${record.name}: ${formatBytes(blob.size)} downloaded, SHA-256 verified (${digest.slice(0, 12)}…).`, 'ok');
        link.click();
      } catch (error) {
        say(this.ctx.report(error), true);
      } finally {
        get.disabled = false;
      }
    };
    let armed: ReturnType<typeof setTimeout> | undefined;
    remove.onclick = async () => {
      if (armed === undefined) {
        // Two clicks: a slip of the mouse deletes nothing.
        remove.textContent = 'Really delete?';
        armed = setTimeout(() => {
          armed = undefined;
          remove.textContent = 'Delete';
        }, 5000);
        return;
      }
      clearTimeout(armed);
      remove.disabled = true;
      try {
        await deleteMemory(this.ctx.actor, record.memory_id);
        if (this.viewer.showing === record.memory_id) await this.viewer.close();
        this.remove(record.memory_id);
        this.ctx.say(`${record.name} deleted, with its share links.`, 'ok');
      } catch (error) {
        armed = undefined;
        remove.textContent = 'Delete';
        remove.disabled = false;
        say(this.ctx.report(error), true);
      }
    };
    return { record, item, thumbUrl };
  }
}
