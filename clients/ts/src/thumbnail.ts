// Thumbnails for gallery pages, made in the browser before an upload: an
// image scaled down on a canvas, or a video's frame at one second, encoded
// as WebP (JPEG where the browser cannot encode WebP) and made smaller
// until it fits the canister's 32 KiB. Browser-only: it needs `document`
// (a <canvas>, and a <video> for videos).

/** The canister's largest thumbnail (`MAX_THUMBNAIL_BYTES` in `src/limits.rs`, fixed in the canister). */
export const MAX_THUMBNAIL_BYTES = 32 * 1024;

/** What the canister takes as a memory's thumbnail (the bindings' `Thumbnail`). */
export interface MadeThumbnail {
  /** `image/webp` or `image/jpeg`, matching the bytes. */
  mime_type: string;
  bytes: Uint8Array;
}

export interface ThumbnailOptions {
  /** The longest side, in pixels (default 256). Smaller images are not enlarged. */
  maxSide?: number;
  /** The largest encoding, in bytes (default and at most `MAX_THUMBNAIL_BYTES`). */
  maxBytes?: number;
  /** The encoding tried first (default WebP); JPEG where the browser cannot encode it. */
  type?: 'image/webp' | 'image/jpeg';
  /** Where in a video its frame is taken, in seconds (default 1; at most half the video). */
  videoSeconds?: number;
  /** Gives up (undefined) after this long (default 15 s). */
  timeoutMs?: number;
}

/** A decoded picture, ready to draw. */
interface Picture {
  source: CanvasImageSource;
  width: number;
  height: number;
  close(): void;
}

const QUALITIES = [0.82, 0.7, 0.55, 0.4, 0.28];
const SIDE_STEPS = [1, 0.75, 0.5, 0.35];

/**
 * A thumbnail of `file`: images (anything the browser decodes: JPEG, PNG,
 * WebP, GIF, AVIF, SVG, ...) scaled so the longest side is `maxSide`, and
 * videos by their frame at `min(1 s, duration / 2)`. Undefined for other
 * types, for files the browser cannot decode, and on any failure or
 * timeout: a memory without a thumbnail is shown by its type instead.
 */
export async function makeThumbnail(file: Blob, options: ThumbnailOptions = {}): Promise<MadeThumbnail | undefined> {
  const maxSide = options.maxSide ?? 256;
  const maxBytes = Math.min(options.maxBytes ?? MAX_THUMBNAIL_BYTES, MAX_THUMBNAIL_BYTES);
  if (typeof document === 'undefined' || !(maxSide >= 1) || !(maxBytes >= 1)) return undefined;
  const kind = file.type.split('/')[0];
  if (kind !== 'image' && kind !== 'video') return undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), options.timeoutMs ?? 15_000);
  });
  let picture: Picture | undefined;
  try {
    const decoding = kind === 'image' ? decodeImage(file) : videoFrame(file, options.videoSeconds ?? 1);
    const decoded = await Promise.race([decoding, deadline]);
    if (decoded === 'timeout') {
      // A decode that arrives late is closed then: nothing is kept alive.
      decoding.then((late) => late?.close(), () => undefined);
      return undefined;
    }
    picture = decoded;
    if (!picture || picture.width < 1 || picture.height < 1) return undefined;
    const encoded = await Promise.race([encode(picture, maxSide, maxBytes, options.type ?? 'image/webp'), deadline]);
    return encoded === 'timeout' ? undefined : encoded;
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
    picture?.close();
  }
}

/** An image, by `createImageBitmap` (EXIF orientation applied), else by an <img> (SVG). */
async function decodeImage(file: Blob): Promise<Picture | undefined> {
  if (typeof createImageBitmap === 'function' && file.type !== 'image/svg+xml') {
    try {
      const bitmap = await createImageBitmap(file);
      return { source: bitmap, width: bitmap.width, height: bitmap.height, close: () => bitmap.close() };
    } catch {
      // Not decodable as a bitmap: an <img> may still manage (SVG).
    }
  }
  const url = URL.createObjectURL(file);
  const img = new Image();
  img.decoding = 'async';
  img.src = url;
  try {
    await img.decode();
  } catch {
    URL.revokeObjectURL(url);
    return undefined;
  }
  // An SVG without a size of its own is drawn at its default 300 x 150.
  const width = img.naturalWidth || 300;
  const height = img.naturalHeight || 150;
  return { source: img, width, height, close: () => URL.revokeObjectURL(url) };
}

/** A video's frame at `min(seconds, duration / 2)`, by a muted, detached <video>. */
async function videoFrame(file: Blob, seconds: number): Promise<Picture | undefined> {
  const url = URL.createObjectURL(file);
  const video = document.createElement('video');
  const close = () => {
    video.removeAttribute('src');
    video.load();
    URL.revokeObjectURL(url);
  };
  try {
    video.muted = true;
    video.playsInline = true;
    video.preload = 'auto';
    video.src = url;
    await mediaEvent(video, 'loadedmetadata');
    if (video.videoWidth === 0 || video.videoHeight === 0) {
      close();
      return undefined;
    }
    // A recorded WebM may not know its duration (Infinity): one second then.
    const duration = Number.isFinite(video.duration) ? video.duration : Infinity;
    const at = Math.max(0, Math.min(seconds, duration / 2));
    if (at > 0) {
      const seeked = mediaEvent(video, 'seeked');
      video.currentTime = at;
      await seeked;
    }
    if (video.readyState < HTMLMediaElement.HAVE_CURRENT_DATA) await mediaEvent(video, 'loadeddata');
    return { source: video, width: video.videoWidth, height: video.videoHeight, close };
  } catch (error) {
    close();
    throw error;
  }
}

function mediaEvent(media: HTMLMediaElement, name: 'loadedmetadata' | 'seeked' | 'loadeddata'): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (ok: boolean) => () => {
      media.removeEventListener(name, onEvent);
      media.removeEventListener('error', onError);
      if (ok) resolve();
      else reject(new Error(`the media could not be decoded (${name})`));
    };
    const onEvent = done(true);
    const onError = done(false);
    media.addEventListener(name, onEvent, { once: true });
    media.addEventListener('error', onError, { once: true });
  });
}

/**
 * Draws `picture` at `maxSide` and encodes it, lowering the quality, then
 * the size, until it fits in `maxBytes`.
 */
async function encode(
  picture: Picture,
  maxSide: number,
  maxBytes: number,
  preferred: 'image/webp' | 'image/jpeg',
): Promise<MadeThumbnail | undefined> {
  const canvas = document.createElement('canvas');
  const context = canvas.getContext('2d');
  if (!context) return undefined;
  let type: 'image/webp' | 'image/jpeg' = preferred;
  const longest = Math.max(picture.width, picture.height);
  for (const step of SIDE_STEPS) {
    const scale = Math.min(1, (maxSide * step) / longest);
    canvas.width = Math.max(1, Math.round(picture.width * scale));
    canvas.height = Math.max(1, Math.round(picture.height * scale));
    for (let q = 0; q < QUALITIES.length; q++) {
      draw(context, picture, canvas.width, canvas.height, type);
      const blob = await toBlob(canvas, type, QUALITIES[q]);
      if (!blob) return undefined;
      const bytes = new Uint8Array(await blob.arrayBuffer());
      const actual = sniff(bytes);
      if (actual !== type) {
        // The browser fell back to PNG: it cannot encode this type.
        if (type === 'image/jpeg') return undefined;
        type = 'image/jpeg';
        q = -1;
        continue;
      }
      if (bytes.length <= maxBytes) return { mime_type: type, bytes };
    }
  }
  return undefined;
}

function draw(
  context: CanvasRenderingContext2D,
  picture: Picture,
  width: number,
  height: number,
  type: string,
): void {
  context.clearRect(0, 0, width, height);
  // JPEG has no transparency: white, not black, behind a transparent PNG.
  if (type === 'image/jpeg') {
    context.fillStyle = '#fff';
    context.fillRect(0, 0, width, height);
  }
  context.imageSmoothingEnabled = true;
  context.imageSmoothingQuality = 'high';
  context.drawImage(picture.source, 0, 0, width, height);
}

function toBlob(canvas: HTMLCanvasElement, type: string, quality: number): Promise<Blob | null> {
  return new Promise((resolve) => canvas.toBlob(resolve, type, quality));
}

/** The type the bytes are, by their magic bytes, as the canister checks them. */
function sniff(bytes: Uint8Array): string | undefined {
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'image/jpeg';
  const ascii = (from: number, to: number) => String.fromCharCode(...bytes.subarray(from, to));
  if (bytes.length >= 12 && ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'image/webp';
  return undefined;
}
