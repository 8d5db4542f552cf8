// @ts-check
/** DOM helpers: the page's elements by their data-testid, and new elements in one call. */

/**
 * The element with this data-testid, of the kind asked for (HTMLElement by default). The page's
 * skeleton is fixed, so a missing or different element is a bug, and throws.
 * @template {HTMLElement} [T=HTMLElement]
 * @param {string} testId
 * @param {{ new (): T, prototype: T }} [kind]
 * @returns {T}
 */
export function $(testId, kind) {
  const node = document.querySelector(`[data-testid="${testId}"]`);
  if (!(node instanceof (kind ?? HTMLElement))) throw new Error(`the page has no such [data-testid="${testId}"]`);
  return /** @type {T} */ (node);
}

/**
 * `text` becomes the text content, `className` the class, an object the inline style; the rest are attributes.
 * @typedef {{ [name: string]: string | Partial<Record<'width' | 'background' | 'color', string>> }} Attributes
 */

/**
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Attributes} [attributes]
 * @param {...(Node | string)} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (typeof value !== 'string') Object.assign(node.style, value);
    else if (name === 'text') node.textContent = value;
    else if (name === 'className') node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

/**
 * An element whose line marker (CSS .swatch) has a run's colour.
 * @param {string} colour
 * @param {keyof HTMLElementTagNameMap} [tag]
 * @param {Attributes} [attributes]
 */
export function swatch(colour, tag = 'span', attributes = {}) {
  const node = element(tag, { ...attributes, className: 'swatch' });
  node.style.setProperty('--colour', colour);
  return node;
}

/**
 * Shows a message in an error line (a `hidden` paragraph), or hides it with none.
 * @param {HTMLElement} line
 * @param {string | null} message
 */
export function showError(line, message) {
  line.hidden = message === null;
  line.textContent = message ?? '';
}
