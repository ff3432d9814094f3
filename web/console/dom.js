// DOM construction without markup parsing. Every text a server or a user supplied reaches the page
// through textContent or an attribute value, never through innerHTML, so markup in a dataset name,
// a description or an audit entry is shown as the characters it is. The Content-Security-Policy
// forbids inline styles: styles come from style.css classes, or from the CSSOM (el.style.x = ...).

const SVG_NS = 'http://www.w3.org/2000/svg';

function refuseAttribute(name) {
  const n = String(name).toLowerCase();
  if (n === 'style' || n.startsWith('on') || n === 'srcdoc') {
    throw new Error(`dom: attribute "${name}" is not allowed (use a class or an event listener)`);
  }
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

function apply(el, props) {
  if (!props) return;
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') {
      el.setAttribute('class', Array.isArray(value) ? value.filter(Boolean).join(' ') : value);
    } else if (key === 'text') {
      el.textContent = String(value);
    } else if (key === 'on') {
      for (const [type, fn] of Object.entries(value)) el.addEventListener(type, fn);
    } else if (key === 'dataset') {
      for (const [k, v] of Object.entries(value)) el.dataset[k] = String(v);
    } else if (key === 'props') {
      // DOM properties (value, checked, disabled...), set as properties rather than attributes.
      for (const [k, v] of Object.entries(value)) el[k] = v;
    } else {
      refuseAttribute(key);
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
}

/** An HTML element: h('td', {class: 'num'}, 'text', childNode, ...). */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  apply(el, props);
  append(el, children);
  return el;
}

/** An SVG element, built with createElementNS. */
export function s(tag, props, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  apply(el, props);
  append(el, children);
  return el;
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

const intFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

export function fmtInt(n) {
  if (typeof n === 'bigint') return n.toLocaleString('en-US');
  return Number.isFinite(n) ? intFormat.format(n) : String(n);
}

/** 0.01234 -> "1.23 %" */
export function fmtPct(x, digits = 2) {
  if (typeof x !== 'number' || !Number.isFinite(x)) return '–';
  return `${(x * 100).toFixed(digits)} %`;
}

export function fmtNum(x, digits = 4) {
  if (typeof x !== 'number' || !Number.isFinite(x)) return '–';
  return Number.isInteger(x) ? fmtInt(x) : x.toFixed(digits);
}

/** Unix milliseconds -> "2026-12-06 21:05:49.123 UTC" */
export function fmtTime(ms) {
  const n = Number(ms);
  if (!Number.isFinite(n)) return String(ms);
  return new Date(n).toISOString().replace('T', ' ').replace('Z', ' UTC');
}

/** A message line: kind is 'info', 'ok', 'error' or 'warn'. */
export function message(kind, ...children) {
  return h('p', { class: ['message', kind], role: kind === 'error' ? 'alert' : 'status' }, ...children);
}

/** A two-column table of facts: [[label, value], ...]; a value may be a Node. */
export function factTable(rows, className = 'facts') {
  return h('table', { class: className },
    h('tbody', null, rows.filter(Boolean).map(([label, value]) =>
      h('tr', null, h('th', { scope: 'row' }, label), h('td', null, value)))));
}

/** A button that runs an async action, disabled while it runs; errors go to onError. */
export function actionButton(label, action, { className = '', onError } = {}) {
  const button = h('button', { type: 'button', class: className }, label);
  button.addEventListener('click', async () => {
    if (button.disabled) return;
    button.disabled = true;
    try {
      await action();
    } catch (err) {
      if (onError) onError(err); else throw err;
    } finally {
      button.disabled = false;
    }
  });
  return button;
}
