// Small DOM helpers. Text is always set with textContent, never parsed as HTML.

/** An element: el('td', {class: 'mono'}, 'text', child, ...). */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') node.addEventListener(name.slice(2), value);
    else if (name === 'text') node.textContent = value;
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

let fieldCount = 0;

/** A labelled input (or select/textarea) in a div, for filter and create forms. */
export function field(label, control) {
  if (!control.id) control.id = `f${++fieldCount}`;
  return el('div', {}, el('label', { for: control.id }, label), control);
}

export function select(name, options, value) {
  const s = el('select', { name });
  for (const o of options) {
    const [v, text] = Array.isArray(o) ? o : [o, o === '' ? 'Any' : o];
    const opt = el('option', { value: v }, text);
    if (v === value) opt.selected = true;
    s.append(opt);
  }
  return s;
}

/** A table with a caption, header cells and rows of cells (strings or nodes). */
export function table(caption, headers, rows) {
  return el('table', {},
    el('caption', {}, caption),
    el('thead', {}, el('tr', {}, headers.map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, rows.length
      ? rows.map((cells) => el('tr', {}, cells.map((c) => (c instanceof Node && c.tagName === 'TD' ? c : el('td', {}, c)))))
      : el('tr', {}, el('td', { colspan: headers.length }, 'None.'))));
}

export function errorText(err) {
  return err && err.type ? `${err.type}: ${err.message}` : String(err && err.message ? err.message : err);
}

/** An error paragraph read out by screen readers. */
export function errorBox(err) {
  return el('p', { class: 'error', role: 'alert' }, errorText(err));
}

export function announce(message) {
  const status = document.getElementById('status');
  status.textContent = message;
  clearTimeout(announce.timer);
  announce.timer = setTimeout(() => { status.textContent = ''; }, 4000);
}

export function date(seconds) {
  if (seconds === undefined || seconds === null || seconds === '') return '';
  const d = new Date(Number(seconds) * 1000);
  return Number.isNaN(d.getTime()) ? String(seconds) : d.toISOString().replace('.000Z', 'Z');
}

export function heading(text) {
  return el('h1', { tabindex: '-1' }, text);
}

/** Replaces the page's content and moves focus to its heading. */
export function show(page, ...nodes) {
  page.replaceChildren(...nodes);
  const h = page.querySelector('h1');
  if (h) h.focus();
}

/** A definition list of [term, value] pairs. */
export function meta(pairs) {
  return el('dl', { class: 'meta' }, pairs.filter(([, v]) => v !== undefined && v !== null && v !== '')
    .flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
}
