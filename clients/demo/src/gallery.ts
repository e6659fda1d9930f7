// The gallery: a capsule's memories as a grid of cards (thumbnail or type
// icon, name, size, date; view, share, download and check, delete), a
// page of `memories_list` at a time with a "More" button while
// `next_after` says more follow.

import { deleteMemory, download, hex, unwrap } from '../../ts/src/index';
import type { PageContext, PageMemory } from './context';
import { byId, el, formatBytes, formatTime } from './dom';
import { sharePanel } from './sharing';
import { thumbnailOf, thumbnailUrl, typeIcon } from './thumbs';
import type { Viewer } from './viewer';

/** Memories asked for per page (the canister may return fewer: it cuts pages by reply size). */
export const PAGE_SIZE = 100;

/** A card's key: memory ids are a canister's own, so the bucket is part of it. */
const keyOf = (record: PageMemory): string => `${record.bucket ?? ''}/${record.memory_id}`;

interface Card {
  record: PageMemory;
  item: HTMLLIElement;
  thumbUrl: string | undefined;
}

export class Gallery {
  private readonly list = byId<HTMLUListElement>('gallery');
  private readonly moreButton = byId<HTMLButtonElement>('more');
  private readonly count = byId<HTMLElement>('gallery-count');
  private readonly cards = new Map<string, Card>();
  private capsule: bigint | undefined;
  /** The canisters holding the capsule's memories, oldest first, and the one paged now. */
  private buckets: (string | undefined)[] = [undefined];
  private bucketAt = 0;
  /** Where the next page starts in that canister. */
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
    this.buckets = [undefined];
    this.bucketAt = 0;
    this.complete = capsule === undefined;
    this.moreButton.hidden = true;
    this.updateCount();
    if (capsule === undefined) return;
    const generation = this.generation;
    const buckets = await this.ctx.bucketsOf(capsule);
    if (generation !== this.generation) return;
    this.buckets = buckets;
    await this.more();
  }

  /** Appends the next page. */
  async more(): Promise<void> {
    const capsule = this.capsule;
    if (capsule === undefined || this.complete) return;
    const generation = this.generation;
    this.moreButton.disabled = true;
    try {
      // Up to PAGE_SIZE memories: a canister's page, and when its memories
      // end before, the next canister's (on an index, oldest bucket first).
      for (let shown = 0; ; ) {
        const bucket = this.buckets[this.bucketAt];
        const page = unwrap(
          'memories_list',
          await this.ctx
            .actorOf(bucket)
            .memories_list({ capsule_id: capsule, after: this.nextAfter, limit: PAGE_SIZE - shown }),
        );
        if (generation !== this.generation) return;
        for (const record of page.memories) this.append({ ...record, bucket });
        shown += page.memories.length;
        this.nextAfter = page.next_after;
        if (page.next_after === undefined) this.bucketAt++;
        this.complete = this.bucketAt >= this.buckets.length;
        // More in this canister (the page was cut), or the page is full.
        if (this.complete || page.next_after !== undefined || shown >= PAGE_SIZE) break;
      }
    } finally {
      this.moreButton.disabled = false;
      this.moreButton.hidden = this.complete;
      this.updateCount();
    }
  }

  /** A memory stored just now: shown when the last page is (it comes last). */
  added(record: PageMemory): void {
    if (record.capsule_id !== this.capsule || !this.complete) return;
    // An upload that moved to a new bucket of the capsule: it comes last.
    if (!this.buckets.includes(record.bucket)) {
      this.buckets.push(record.bucket);
      this.bucketAt = this.buckets.length;
    }
    const card = this.cards.get(keyOf(record));
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

  private append(record: PageMemory): void {
    if (this.cards.has(keyOf(record))) return;
    const card = this.card(record);
    this.cards.set(keyOf(record), card);
    this.list.append(card.item);
  }

  private replace(card: Card, record: PageMemory): void {
    const fresh = this.card(record);
    this.release(card);
    card.item.replaceWith(fresh.item);
    this.cards.set(keyOf(record), fresh);
  }

  private release(card: Card): void {
    if (card.thumbUrl) URL.revokeObjectURL(card.thumbUrl);
  }

  private remove(record: PageMemory): void {
    const card = this.cards.get(keyOf(record));
    if (!card) return;
    this.release(card);
    card.item.remove();
    this.cards.delete(keyOf(record));
    this.updateCount();
  }

  private card(record: PageMemory): Card {
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
    const sharing = !!this.ctx.gatewayOf(record.bucket);
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
      {
        className: 'card',
        dataset: { memoryId: record.memory_id.toString(), thumbnail: thumbnail ? 'yes' : 'no', ...(record.bucket ? { bucket: record.bucket } : {}) },
      },
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
        const { blob } = await download(this.ctx.actorOf(record.bucket), record.memory_id, {
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
        await deleteMemory(this.ctx.actorOf(record.bucket), record.memory_id);
        if (this.viewer.showing === record.memory_id) await this.viewer.close();
        this.remove(record);
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
