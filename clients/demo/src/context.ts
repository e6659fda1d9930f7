// What every part of the page shares: the actor, where it points, and the
// status line.

import type { Backend } from '../../ts/src/index';
import type { Where } from './messages';

export interface PageContext {
  actor: Backend;
  where: Where;
  /** The share links' base URL (the `gateway` parameter); none: no sharing. */
  gateway: string | undefined;
  chunkBytes: number | undefined;
  inFlight: number | undefined;
  /** Shows one sentence in the status line. */
  say(text: string, kind?: 'ok' | 'error' | ''): void;
  /** Shows the sentence for `error` (its details go to the console) and returns it. */
  report(error: unknown): string;
}
