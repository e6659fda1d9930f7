// Memories' thumbnails: the canister keeps one per memory (a JPEG or WebP
// of at most 32 KiB), returned with `memories_list` and `memories_get`.

import type { Backend, MemoryRecord, Thumbnail } from '../../ts/src/index';
import { UploadFailed } from '../../ts/src/index';

/** The thumbnail the canister returned with `record`, if any. */
export function thumbnailOf(record: MemoryRecord): Thumbnail | undefined {
  return record.thumbnail;
}

/**
 * Gives memory `memoryId` a thumbnail after the upload: for memories
 * stored without one (an upload begun before thumbnails, or elsewhere).
 */
export async function setThumbnail(actor: Backend, memoryId: bigint, thumbnail: Thumbnail): Promise<void> {
  const result = await actor.memories_set_thumbnail(memoryId, thumbnail);
  if (result.__kind__ === 'Err') throw new UploadFailed(result.Err, 'memories_set_thumbnail');
}

/** An object URL showing `thumbnail` (revoke it when the card goes). */
export function thumbnailUrl(thumbnail: Thumbnail): string {
  return URL.createObjectURL(new Blob([thumbnail.bytes as Uint8Array<ArrayBuffer>], { type: thumbnail.mime_type }));
}

/** What a memory without a thumbnail shows: its kind (for the icon's colour) and a short label. */
export function typeIcon(mimeType: string, name: string): { kind: string; label: string } {
  const ext = /\.([A-Za-z0-9]{1,5})$/.exec(name)?.[1]?.toUpperCase();
  const [kind, sub = ''] = mimeType.toLowerCase().split('/');
  if (kind === 'image' || kind === 'video' || kind === 'audio') return { kind, label: ext ?? kind.toUpperCase() };
  if (sub === 'pdf') return { kind: 'document', label: 'PDF' };
  if (kind === 'text') return { kind: 'document', label: ext ?? 'TEXT' };
  if (/zip|tar|gzip|compressed|x-7z|rar/.test(sub)) return { kind: 'archive', label: ext ?? 'ARCHIVE' };
  return { kind: 'file', label: ext ?? 'FILE' };
}
