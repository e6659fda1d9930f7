// Building the page from DOM nodes: text is always a text node (or
// `textContent`), never markup, so a file name, an error or a principal
// cannot become HTML. Nothing in the page parses HTML from a string.

type Child = Node | string | number | false | null | undefined;
type Props<K extends keyof HTMLElementTagNameMap> = Partial<
  Omit<HTMLElementTagNameMap[K], 'style' | 'dataset' | 'children'>
> & {
  dataset?: Record<string, string>;
  style?: Partial<CSSStyleDeclaration>;
  attrs?: Record<string, string>;
};

/** `<tag>` with `props` set as properties and `children` appended as nodes or text. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props<K> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  const { dataset, style, attrs, ...rest } = props;
  for (const [key, value] of Object.entries(rest)) {
    // Properties only (`textContent`, `href`, `onclick`, ...); the page
    // never passes a property that parses markup.
    (node as unknown as Record<string, unknown>)[key] = value;
  }
  if (dataset) Object.assign(node.dataset, dataset);
  if (style) Object.assign(node.style, style);
  if (attrs) for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  append(node, ...children);
  return node;
}

export function append(node: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === false || child === null || child === undefined) continue;
    node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function byId<T extends HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (!node) throw new Error(`#${id} is missing from index.html`);
  return node as T;
}

export function formatBytes(n: number | bigint): string {
  const v = Number(n);
  if (v < 1024) return `${v} B`;
  if (v < 1024 * 1024) return `${(v / 1024).toFixed(1)} KiB`;
  if (v < 1024 ** 3) return `${(v / 1024 / 1024).toFixed(1)} MiB`;
  return `${(v / 1024 ** 3).toFixed(2)} GiB`;
}

export function formatSeconds(s: number | undefined): string {
  if (s === undefined || !Number.isFinite(s)) return '…';
  return s < 90 ? `${Math.ceil(s)} s` : `${Math.ceil(s / 60)} min`;
}

/** A canister time (nanoseconds since the epoch) as a local date and time. */
export function formatTime(ns: bigint): string {
  return new Date(Number(ns / 1_000_000n)).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}
