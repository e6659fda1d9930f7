// The upload queue: files chosen together upload two at a time, each in
// its own row (name, progress, one line of text, Abort). A thumbnail is
// made in the browser first (images and videos).

import { UploadAborted, byteLength, type UploadProgress } from '../../ts/src/index';
import { makeThumbnail } from '../../ts/src/thumbnail';
import type { PageContext, PageMemory } from './context';
import { byId, el, formatBytes, formatSeconds } from './dom';
import { setThumbnail, thumbnailOf } from './thumbs';

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** Uploads running at once. */
export const AT_ONCE = 2;

type RowState = 'queued' | 'preparing' | 'uploading' | 'aborting' | 'done' | 'failed' | 'aborted';

interface Row {
  file: File;
  capsule: bigint;
  item: HTMLLIElement;
  bar: HTMLProgressElement;
  line: HTMLElement;
  abort: HTMLButtonElement;
  controller: AbortController;
  state: RowState;
}

export class UploadQueue {
  private readonly list = byId<HTMLUListElement>('queue');
  private readonly waiting: Row[] = [];
  private running = 0;
  /** How the uploads since the queue was last idle ended. */
  private ended = { stored: 0, failed: 0, aborted: 0 };

  constructor(
    private readonly ctx: PageContext,
    /** A memory was stored (or found already stored). */
    private readonly onStored: (record: PageMemory) => void,
    /** An upload ended, however it ended. */
    private readonly onSettled: () => void,
  ) {}

  /** Queues `files` for `capsule`, each in its own row. */
  add(files: Iterable<File>, capsule: bigint): void {
    for (const file of files) {
      const bar = el('progress', { max: 100, value: 0 });
      const line = el('div', { className: 'line', textContent: 'Waiting…' });
      const abort = el('button', { className: 'abort', textContent: 'Abort' });
      const item = el(
        'li',
        { dataset: { state: 'queued' } },
        el('div', { className: 'name', title: file.name, textContent: file.name }),
        bar,
        abort,
        line,
      );
      const row: Row = { file, capsule, item, bar, line, abort, controller: new AbortController(), state: 'queued' };
      abort.onclick = () => this.abortRow(row);
      this.list.append(item);
      this.waiting.push(row);
    }
    this.pump();
  }

  private setState(row: Row, state: RowState, text?: string): void {
    row.state = state;
    row.item.dataset.state = state;
    if (text !== undefined) row.line.textContent = text;
    row.abort.disabled = state === 'done' || state === 'failed' || state === 'aborted' || state === 'aborting';
  }

  private abortRow(row: Row): void {
    if (row.state === 'queued') {
      this.waiting.splice(this.waiting.indexOf(row), 1);
      this.setState(row, 'aborted', 'Aborted before it started: nothing was sent.');
      this.ended.aborted++;
      if (this.running === 0 && this.waiting.length === 0) this.summarize();
      return;
    }
    if (row.state !== 'preparing' && row.state !== 'uploading') return;
    // The progress line is reset at once: no stale "85 % … 2 s left".
    row.bar.value = 0;
    this.setState(row, 'aborting', 'Aborting…');
    row.controller.abort();
  }

  private pump(): void {
    while (this.running < AT_ONCE && this.waiting.length > 0) {
      const row = this.waiting.shift()!;
      this.running++;
      void this.run(row).finally(() => {
        this.running--;
        this.ended[row.state === 'done' ? 'stored' : row.state === 'aborted' ? 'aborted' : 'failed']++;
        this.pump();
        if (this.running === 0 && this.waiting.length === 0) this.summarize();
        this.onSettled();
      });
    }
  }

  /** One line once every queued upload has ended. */
  private summarize(): void {
    const { stored, failed, aborted } = this.ended;
    this.ended = { stored: 0, failed: 0, aborted: 0 };
    const parts = [stored && `${stored} stored`, failed && `${failed} failed (its row says why)`, aborted && `${aborted} aborted`];
    const total = stored + failed + aborted;
    const summary = `${total === 1 ? 'The upload' : `All ${total} uploads`} ended: ${parts.filter(Boolean).join(', ')}.`;
    this.ctx.say(summary, failed ? 'error' : 'ok');
  }

  private async run(row: Row): Promise<void> {
    const { file, capsule, bar } = row;
    const signal = row.controller.signal;
    this.setState(row, 'preparing', 'Making a thumbnail…');
    try {
      const thumbnail = await makeThumbnail(file);
      if (signal.aborted) throw new UploadAborted(undefined);
      this.setState(row, 'uploading', 'Starting…');
      let progressed = false;
      const show = (p: UploadProgress) => {
        // Late reports of an aborted upload must not bring its line back.
        if (row.state !== 'uploading') return;
        progressed = true;
        const percent = p.totalBytes === 0 ? 100 : Math.floor((100 * p.confirmedBytes) / p.totalBytes);
        bar.value = percent;
        const resumed = p.resumedBytes > 0 ? ` · ${formatBytes(p.resumedBytes)} were already there` : '';
        row.line.textContent =
          `${percent} % · ${formatBytes(p.confirmedBytes)} of ${formatBytes(p.totalBytes)} · ` +
          `${formatBytes(p.bytesPerSecond)}/s · ${formatSeconds(p.secondsLeft)} left${resumed}`;
      };
      // The thumbnail goes with `uploads_begin`; a memory stored before
      // without one gets it afterwards (below).
      // Where the capsule's uploads go now (on an index: its upload bucket,
      // or the next one if that was sealed).
      const result = await this.ctx.upload(capsule, file, {
        signal,
        onProgress: show,
        chunkBytes: this.ctx.chunkBytes,
        inFlight: this.ctx.inFlight,
        thumbnail,
      });
      // An upload that sent nothing and reported no progress found the
      // same file committed before: the canister's memory is the answer.
      const already = !progressed && result.chunkCalls === 0 && byteLength(file) > 0;
      // The record, for the gallery; if it cannot be read now, the memory
      // is stored all the same and shows on the next reload.
      const actor = this.ctx.actorOf(result.bucket);
      const got = await actor.memories_get(result.memory_id).catch((error: unknown) => {
        console.warn('reading the stored memory', error);
        return undefined;
      });
      let record: PageMemory | undefined = got?.__kind__ === 'Ok' ? { ...got.Ok, bucket: result.bucket } : undefined;
      let thumbNote = '';
      if (record && thumbnail && !thumbnailOf(record)) {
        try {
          await setThumbnail(actor, result.memory_id, thumbnail);
          record = { ...record, thumbnail };
        } catch (error) {
          thumbNote = ` Its thumbnail was not kept: ${this.ctx.report(error)}`;
        }
      }
      bar.value = 100;
      const text = already
        ? `Already stored as memory ${result.memory_id}: nothing was sent.`
        : `Done: ${formatBytes(result.byte_len)} stored as memory ${result.memory_id} · ` +
          `${plural(result.chunkCalls, 'chunk')} sent${result.resumedChunks > 0 ? `, ${result.resumedChunks} resumed from before` : ''}.`;
      this.setState(row, 'done', text + thumbNote);
      row.item.dataset.memoryId = result.memory_id.toString();
      if (record) this.onStored(record);
    } catch (error) {
      if (signal.aborted) {
        bar.value = 0;
        this.setState(row, 'aborted', 'Aborted: nothing more is sent, and the canister freed what it had reserved.');
        return;
      }
      bar.value = 0;
      this.setState(row, 'failed', this.ctx.report(error));
    }
  }
}
