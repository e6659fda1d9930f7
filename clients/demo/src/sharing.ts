// A memory's share panel: a new link with the expiry the user picks
// (copied to the clipboard), and the memory's links, each with its URL,
// expiry, Copy and Revoke.

import { share, shares, shareUrl, unshare, type ShareLink } from '../../ts/src/index';
import type { PageContext, PageMemory } from './context';
import { el, formatTime } from './dom';

const EXPIRIES: [label: string, ms: number | undefined][] = [
  ['10 minutes', 10 * 60_000],
  ['1 hour', 3_600_000],
  ['1 day', 86_400_000],
  ['1 week', 7 * 86_400_000],
  ['30 days', 30 * 86_400_000],
  ['no expiry', undefined],
];

/** Copies `text`; false when the browser allows neither way. */
export async function copyText(text: string, fallback?: HTMLInputElement): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    if (!fallback) return false;
    fallback.select();
    try {
      return document.execCommand('copy');
    } catch {
      return false;
    }
  }
}

export function sharePanel(ctx: PageContext, record: PageMemory, note: (text: string, error?: boolean) => void): HTMLElement {
  // The memory's own canister makes, lists, serves and revokes its links.
  const gateway = ctx.gatewayOf(record.bucket)!;
  const actor = ctx.actorOf(record.bucket);
  const select = el(
    'select',
    { attrs: { 'aria-label': 'link expiry' }, className: 'expiry' },
    ...EXPIRIES.map(([label], i) => el('option', { value: String(i), textContent: label, selected: i === 2 })),
  );
  const create = el('button', { className: 'create-link', textContent: 'Create link' });
  const list = el('ul', { className: 'links' });
  const panel = el('div', { className: 'share' }, el('label', {}, 'Valid for ', select), ' ', create, list);

  const row = (link: ShareLink): HTMLLIElement => {
    const url = shareUrl(gateway, link);
    const input = el('input', { readOnly: true, value: url, attrs: { 'aria-label': 'share link' } });
    const copy = el('button', { textContent: 'Copy' });
    const revoke = el('button', { className: 'revoke', textContent: 'Revoke' });
    const expiry = link.expires_at === undefined ? 'never expires' : `until ${formatTime(link.expires_at)}`;
    copy.onclick = async () => note((await copyText(url, input)) ? 'Link copied.' : 'Copying failed: select the link and copy it by hand.');
    revoke.onclick = async () => {
      revoke.disabled = true;
      try {
        await unshare(actor, link.link_id);
        note('Link revoked: it now answers 404 (a browser that opened it may keep its copy for up to an hour).');
        await refresh();
      } catch (error) {
        revoke.disabled = false;
        note(ctx.report(error), true);
      }
    };
    return el(
      'li',
      { dataset: { linkId: link.link_id.toString() } },
      input,
      `${link.ready ? '' : 'being prepared · '}${expiry} `,
      copy,
      revoke,
    );
  };

  const refresh = async (): Promise<void> => {
    const links = await shares(actor, record.memory_id);
    list.replaceChildren(...links.map(row));
    if (links.length === 0) list.append(el('li', {}, 'No links: nobody but you can read it.'));
  };

  create.onclick = async () => {
    create.disabled = true;
    try {
      const ms = EXPIRIES[Number(select.value)][1];
      const url = await share(actor, record.memory_id, {
        gateway,
        expiresAt: ms === undefined ? undefined : new Date(Date.now() + ms),
      });
      const copied = await copyText(url);
      const until = ms === undefined ? 'until you revoke it' : `for ${EXPIRIES[Number(select.value)][0]}`;
      note(`${copied ? 'Link created and copied' : 'Link created (copy it below)'}: anyone who has it can open ${record.name} ${until}.`);
      panel.dataset.lastLink = url;
      await refresh();
    } catch (error) {
      note(ctx.report(error), true);
    } finally {
      create.disabled = false;
    }
  };

  refresh().catch((error) => note(ctx.report(error), true));
  return panel;
}
