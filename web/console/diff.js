// A line diff of two texts (longest common subsequence), shown as a unified diff with context.
// The common head and tail are matched first; the LCS table covers only the lines in between.

import { h } from './dom.js';

const MAX_CELLS = 16_000_000; // 64 MB of Uint32: beyond that, the changed middle is shown whole

/**
 * Returns the edit script [{op: ' ' | '-' | '+', a: line number in a or null, b: in b or null, text}].
 * `approximate` is true when the middle was too large to match line by line.
 */
export function lineDiff(aText, bText) {
  const a = aText.split('\n');
  const b = bText.split('\n');
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  const am = a.slice(head, a.length - tail);
  const bm = b.slice(head, b.length - tail);
  const ops = [];
  for (let k = 0; k < head; k++) ops.push({ op: ' ', a: k + 1, b: k + 1, text: a[k] });

  let approximate = false;
  const n = am.length;
  const m = bm.length;
  if ((n + 1) * (m + 1) > MAX_CELLS) {
    approximate = true;
    am.forEach((t, k) => ops.push({ op: '-', a: head + k + 1, b: null, text: t }));
    bm.forEach((t, k) => ops.push({ op: '+', a: null, b: head + k + 1, text: t }));
  } else {
    // lcs[i][j] = length of the LCS of am[i:] and bm[j:], row-major in one array
    const w = m + 1;
    const lcs = new Uint32Array((n + 1) * w);
    for (let i = n - 1; i >= 0; i--) {
      for (let j = m - 1; j >= 0; j--) {
        lcs[i * w + j] = am[i] === bm[j] ? lcs[(i + 1) * w + j + 1] + 1 : Math.max(lcs[(i + 1) * w + j], lcs[i * w + j + 1]);
      }
    }
    let i = 0;
    let j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && am[i] === bm[j]) {
        ops.push({ op: ' ', a: head + i + 1, b: head + j + 1, text: am[i] });
        i++;
        j++;
      } else if (j < m && (i === n || lcs[i * w + j + 1] >= lcs[(i + 1) * w + j])) {
        ops.push({ op: '+', a: null, b: head + j + 1, text: bm[j] });
        j++;
      } else {
        ops.push({ op: '-', a: head + i + 1, b: null, text: am[i] });
        i++;
      }
    }
  }
  for (let k = 0; k < tail; k++) {
    ops.push({ op: ' ', a: a.length - tail + k + 1, b: b.length - tail + k + 1, text: a[a.length - tail + k] });
  }
  // Within a changed run, show removals before additions (the LCS walk may interleave them).
  return { ops: groupChanges(ops), approximate };
}

function groupChanges(ops) {
  const out = [];
  let k = 0;
  while (k < ops.length) {
    if (ops[k].op === ' ') {
      out.push(ops[k++]);
      continue;
    }
    const removed = [];
    const added = [];
    while (k < ops.length && ops[k].op !== ' ') (ops[k].op === '-' ? removed : added).push(ops[k++]);
    out.push(...removed, ...added);
  }
  return out;
}

/** A table showing the changes with `context` unchanged lines around each; longer runs are folded. */
export function renderDiff({ ops, approximate }, { context = 3, labelA = 'old', labelB = 'new' } = {}) {
  const changed = ops.map((o) => o.op !== ' ');
  const keep = ops.map((o, k) => {
    if (changed[k]) return true;
    for (let d = -context; d <= context; d++) if (changed[k + d]) return true;
    return false;
  });
  const added = ops.filter((o) => o.op === '+').length;
  const removed = ops.filter((o) => o.op === '-').length;
  const rows = [];
  let k = 0;
  while (k < ops.length) {
    if (!keep[k]) {
      let e = k;
      while (e < ops.length && !keep[e]) e++;
      rows.push(h('tr', { class: 'fold' }, h('td', { colspan: '4' }, `… ${e - k} unchanged line${e - k === 1 ? '' : 's'} …`)));
      k = e;
      continue;
    }
    const o = ops[k++];
    const cls = o.op === '+' ? 'add' : o.op === '-' ? 'del' : 'same';
    rows.push(h('tr', { class: cls },
      h('td', { class: 'ln' }, o.a ?? ''),
      h('td', { class: 'ln' }, o.b ?? ''),
      h('td', { class: 'op' }, o.op),
      h('td', { class: 'code' }, o.text)));
  }
  const summary = added === 0 && removed === 0
    ? 'The two versions are identical.'
    : `${labelA} → ${labelB}: ${removed} line${removed === 1 ? '' : 's'} removed, ${added} added${approximate ? ' (too large to match line by line: the changed part is shown whole)' : ''}.`;
  return h('div', { class: 'diff-wrap' },
    h('p', { class: 'diff-summary' }, summary),
    h('table', { class: 'diff' }, h('tbody', null, rows)));
}
