// The auditor's screens: the log with filters and paging, an entry with its inclusion proof checked
// in the browser, and "Verify the log" over the whole export.

import * as api from './api.js';
import { h, clear, fmtInt, fmtTime, message, factTable } from './dom.js';
import { parseJson, member, prettyJson, canonicalBytes, toPlain, JsonNumber } from './canonical.js';
import { leafHash, toHex, fromHex32, equalBytes, verifyInclusion, verifyTreeHead, importGatewayKey, requireWebCrypto } from './merkle.js';
import { verifyExport, VerificationFailure } from './verify.js';

const DECISIONS = ['allowed', 'denied', 'completed', 'aborted', 'failed', 'interrupted'];

// The actions of docs/audit.md ("Every request"), for the action filter's suggestions.
const ACTIONS = [
  'extract.requested', 'extract.completed', 'extract.aborted', 'extract.manifest', 'query.answer', 'catalog.get',
  'dataset.list', 'dataset.get', 'dataset.put', 'policy.get', 'policy.version.get', 'policy.put', 'policy.retire',
  'policy.preview', 'source.list', 'source.get', 'source.put', 'group.list', 'group.get', 'group.put', 'group.delete',
  'group.member.add', 'group.member.remove', 'audit.query', 'audit.export', 'audit.tree_head', 'audit.proof.inclusion',
  'audit.proof.consistency', 'transparency.get', 'transparency.entry.get', 'console.get', 'keys.get', 'health.get',
  'readiness.get', 'metrics.get', 'request.unrouted',
];

// ---- the gateway key ------------------------------------------------------------------------------

let gatewayKeyCache = null; // {source, key}

/**
 * The Ed25519 key tree heads are checked with: the one the auditor pinned (pasted base64), else
 * the one the gateway serves at GET /v1/keys (public, fetched without the token).
 */
export async function gatewayKey(pinned) {
  requireWebCrypto();
  const source = pinned && pinned.trim() ? `pinned:${pinned.trim()}` : 'served';
  if (gatewayKeyCache && gatewayKeyCache.source === source) return gatewayKeyCache.key;
  let key;
  if (source === 'served') {
    const doc = await api.getJson('/v1/keys', undefined, { auth: false });
    const keys = (doc.keys || []).filter((k) => k.algorithm === 'Ed25519');
    if (keys.length !== 1) throw new Error(`the gateway serves ${keys.length} Ed25519 keys; paste the one you trust`);
    key = await importGatewayKey(keys[0].public_key);
    key.origin = 'served by the gateway at /v1/keys';
  } else {
    key = await importGatewayKey(pinned);
    key.origin = 'pinned by you';
  }
  gatewayKeyCache = { source, key };
  return key;
}

export function forgetAuditState() {
  gatewayKeyCache = null;
}

function describeError(err) {
  if (err instanceof api.ApiError) return err.describe();
  return err && err.message ? err.message : String(err);
}

function plainEntry(entry) {
  return toPlain(entry);
}

// ---- the log ----------------------------------------------------------------------------------------

function toRfc3339(localValue) {
  if (!localValue) return '';
  const d = new Date(localValue); // datetime-local is the browser's local time
  return Number.isNaN(d.getTime()) ? '' : d.toISOString();
}

export function mountLog(root, ctx) {
  const state = { query: {}, cursor: null, previous: [], page: null };

  const field = (name, label, input) => h('label', { class: 'field' }, h('span', null, label), input);
  const actor = h('input', { name: 'actor', type: 'text', autocomplete: 'off', spellcheck: 'false' });
  const action = h('input', { name: 'action', type: 'text', list: 'audit-actions', autocomplete: 'off', spellcheck: 'false' });
  const actions = h('datalist', { id: 'audit-actions' }, ACTIONS.map((a) => h('option', { value: a })));
  const decision = h('select', { name: 'decision' }, h('option', { value: '' }, 'any'), DECISIONS.map((d) => h('option', { value: d }, d)));
  const dataset = h('input', { name: 'dataset', type: 'text', autocomplete: 'off', spellcheck: 'false' });
  const from = h('input', { name: 'from', type: 'datetime-local', step: '1' });
  const to = h('input', { name: 'to', type: 'datetime-local', step: '1' });
  const limit = h('select', { name: 'limit' }, ['10', '25', '50', '100', '250'].map((n) => h('option', { value: n, props: { selected: n === '50' } }, n)));

  const status = h('div', { class: 'status', id: 'log-status' });
  const table = h('div', { class: 'table-wrap', id: 'log-table' });
  const pager = h('div', { class: 'pager' });
  const detail = h('section', { class: 'panel detail', id: 'entry-detail', hidden: true });

  const form = h('form', { class: 'filters', id: 'log-filters', autocomplete: 'off' },
    field('actor', 'Actor', actor),
    field('action', 'Action', action), actions,
    field('decision', 'Decision', decision),
    field('dataset', 'Dataset', dataset),
    field('from', 'From (your local time)', from),
    field('to', 'To (your local time)', to),
    field('limit', 'Per page', limit),
    h('div', { class: 'buttons' },
      h('button', { type: 'submit', id: 'log-apply' }, 'Apply filters'),
      h('button', { type: 'button', id: 'log-clear', class: 'secondary', on: { click: () => { form.reset(); apply(); } } }, 'Clear')));

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    apply();
  });

  function apply() {
    state.query = {
      actor: actor.value.trim(),
      action: action.value.trim(),
      decision: decision.value,
      dataset: dataset.value.trim(),
      from: toRfc3339(from.value),
      to: toRfc3339(to.value),
      limit: limit.value,
    };
    state.cursor = null;
    state.previous = [];
    load();
  }

  async function load() {
    clear(status).append(message('info', 'Loading…'));
    try {
      const text = await api.getText('/v1/audit', { ...state.query, cursor: state.cursor ?? undefined });
      const page = parseJson(text);
      state.page = page;
      render(page);
      clear(status);
    } catch (err) {
      clear(status).append(message('error', describeError(err)));
    }
  }

  function render(page) {
    const entries = member(page, 'entries') || [];
    const next = member(page, 'next_cursor');
    clear(table);
    if (!entries.length) {
      table.append(message('info', 'No entries match these filters.'));
    } else {
      const rows = entries.map((item) => {
        const index = Number(member(item, 'index'));
        const entry = member(item, 'entry');
        const e = plainEntry(entry);
        const target = e.target || {};
        const open = h('button', { type: 'button', class: 'link entry-link', dataset: { index } }, `#${index}`);
        open.addEventListener('click', () => openEntry(item));
        return h('tr', { class: ['entry-row', `decision-${e.decision}`], dataset: { index } },
          h('td', { class: 'num' }, open),
          h('td', { class: 'time' }, fmtTime(e.time_ms)),
          h('td', null, e.actor ?? ''),
          h('td', null, e.role ?? ''),
          h('td', { class: 'mono' }, e.action ?? ''),
          h('td', null, h('span', { class: ['badge', `decision-${e.decision}`] }, e.decision ?? '')),
          h('td', null, target.dataset ?? ''),
          h('td', null, target.policy == null ? '' : `${target.policy}${target.policy_version == null ? '' : ` v${target.policy_version}`}`),
          h('td', { class: 'purpose' }, e.purpose ?? ''));
      });
      table.append(h('table', { class: 'log' },
        h('thead', null, h('tr', null, ['Index', 'Time (UTC)', 'Actor', 'Role', 'Action', 'Decision', 'Dataset', 'Policy', 'Purpose'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', null, rows)));
    }
    const first = entries.length ? Number(member(entries[0], 'index')) : null;
    const last = entries.length ? Number(member(entries[entries.length - 1], 'index')) : null;
    const prevButton = h('button', { type: 'button', id: 'log-prev', class: 'secondary', props: { disabled: state.previous.length === 0 } }, '← Previous page');
    prevButton.addEventListener('click', () => {
      state.cursor = state.previous.pop() ?? null;
      load();
    });
    const nextButton = h('button', { type: 'button', id: 'log-next', props: { disabled: next === null || next === undefined } }, 'Next page →');
    nextButton.addEventListener('click', () => {
      state.previous.push(state.cursor);
      state.cursor = next instanceof JsonNumber ? next.raw : String(next);
      load();
    });
    clear(pager).append(prevButton,
      h('span', { class: 'page-info', id: 'log-page-info' },
        entries.length ? `page ${state.previous.length + 1}: entries #${first}–#${last} (${entries.length} shown)` : `page ${state.previous.length + 1}`),
      nextButton);
  }

  async function openEntry(item) {
    detail.hidden = false;
    for (const row of table.querySelectorAll('tr.selected')) row.classList.remove('selected');
    const index = Number(member(item, 'index'));
    const row = table.querySelector(`tr[data-index="${index}"]`);
    if (row) row.classList.add('selected');
    renderEntry(detail, item, ctx);
    detail.scrollIntoView({ block: 'nearest' });
  }

  clear(root).append(
    h('h2', null, 'Audit log'),
    h('p', { class: 'lede' }, 'Every access to the gateway, allowed or refused, in the order it was recorded. Reading this log is itself recorded.'),
    form, status, table, pager, detail);
  apply();
}

// ---- one entry and its inclusion proof ---------------------------------------------------------------

function renderEntry(panel, item, ctx) {
  const index = Number(member(item, 'index'));
  const entry = member(item, 'entry');
  const recordedHex = member(item, 'leaf_hash');
  const e = plainEntry(entry);
  const target = e.target || {};
  const proofStatus = h('p', { class: 'proof-status', id: 'proof-status', dataset: { state: 'running' } }, 'Checking the inclusion proof…');
  const proofFacts = h('div', { class: 'proof-facts' });
  const close = h('button', { type: 'button', class: 'secondary close', id: 'entry-close' }, 'Close');
  close.addEventListener('click', () => {
    panel.hidden = true;
    clear(panel);
  });
  const recheck = h('button', { type: 'button', class: 'secondary', id: 'proof-recheck' }, 'Check the proof again');
  recheck.addEventListener('click', () => checkProof());

  clear(panel).append(
    h('div', { class: 'panel-head' }, h('h3', null, `Entry #${index}`), close),
    factTable([
      ['Time', fmtTime(e.time_ms)],
      ['Actor', `${e.actor ?? ''} (${e.role ?? ''})`],
      ['Action', e.action ?? ''],
      ['Decision', e.decision ?? ''],
      e.reason != null && ['Reason', e.reason],
      e.purpose != null && ['Purpose', e.purpose],
      (target.dataset != null || target.source != null) && ['Target',
        [target.source != null && `source ${target.source}`, target.dataset != null && `dataset ${target.dataset}`,
          target.policy != null && `policy ${target.policy}`, target.policy_version != null && `version ${target.policy_version}`]
          .filter(Boolean).join(', ')],
      ['Request id', e.request_id ?? ''],
      ['Client address', e.client_address ?? ''],
    ]),
    h('h4', null, 'Inclusion proof'),
    proofStatus, proofFacts, recheck,
    h('h4', null, 'The entry as hashed (canonical JSON, shown indented)'),
    h('pre', { class: 'json', id: 'entry-json' }, prettyJson(entry)));

  const setStatus = (state, text) => {
    proofStatus.dataset.state = state;
    proofStatus.className = `proof-status ${state}`;
    proofStatus.textContent = text;
  };

  async function checkProof() {
    setStatus('running', 'Checking the inclusion proof…');
    clear(proofFacts);
    try {
      const recorded = fromHex32(recordedHex);
      const computed = await leafHash(canonicalBytes(entry));
      const facts = [
        ['Leaf hash recorded', h('code', null, String(recordedHex))],
        ['Leaf hash recomputed here', h('code', null, toHex(computed))],
      ];
      proofFacts.append(factTable(facts));
      if (!recorded || !equalBytes(recorded, computed)) {
        setStatus('failed', 'FAILED: the entry\'s bytes do not hash to the leaf hash the log recorded — the entry was altered after it was written.');
        return;
      }
      const key = await gatewayKey(ctx.pinnedKey());
      const head = await api.getJson('/v1/audit/tree-head');
      const signed = await verifyTreeHead(key, head);
      if (!signed.ok) {
        setStatus('failed', `FAILED: the latest tree head (tree_size ${head.tree_size}): ${signed.reason}.`);
        return;
      }
      if (signed.size <= index) {
        setStatus('pending', `Not yet covered: the latest signed tree head covers entries 0–${signed.size - 1}. Heads are signed every few seconds; check again shortly.`);
        return;
      }
      const proof = await api.getJson('/v1/audit/proof/inclusion', { index, tree_size: signed.size });
      const path = (proof.audit_path || []).map(fromHex32);
      if (path.some((p) => !p)) {
        setStatus('failed', 'FAILED: the audit path holds a value that is not a 32-byte hash.');
        return;
      }
      const result = await verifyInclusion(index, signed.size, computed, path, signed.root);
      proofFacts.append(factTable([
        ['Signed tree head', `tree_size ${fmtInt(signed.size)}, signed ${fmtTime(signed.timestamp)}`],
        ['Root hash (signed)', h('code', null, toHex(signed.root))],
        ['Gateway key', `${key.id} (${key.origin})`],
        ['Audit path', h('ol', { class: 'hashes' }, path.map((p) => h('li', null, h('code', null, toHex(p)))))],
      ]));
      if (!result.ok) {
        setStatus('failed', `FAILED: ${result.reason}.`);
        return;
      }
      setStatus('verified', `Verified: entry #${index} is included in the log of ${fmtInt(signed.size)} entries whose root the gateway signed at ${fmtTime(signed.timestamp)}.`);
    } catch (err) {
      setStatus('failed', `The proof could not be checked: ${describeError(err)}`);
    }
  }
  checkProof();
}

/** Heads pasted by the auditor, one JSON object per line (an export's tree_head line is accepted too). */
function keptHeads(text) {
  const heads = [];
  text.split('\n').forEach((line, k) => {
    if (!line.trim()) return;
    let head;
    try {
      head = JSON.parse(line);
    } catch {
      throw new Error(`kept tree head on line ${k + 1} is not JSON`);
    }
    if (!head || typeof head !== 'object' || !['tree_size', 'timestamp_ms', 'root_hash', 'signature'].every((m) => m in head)) {
      throw new Error(`kept tree head on line ${k + 1} lacks tree_size, timestamp_ms, root_hash or signature`);
    }
    heads.push({ head, label: `the tree head you kept (line ${k + 1})` });
  });
  return heads;
}

// ---- verify the whole log --------------------------------------------------------------------------------

export function mountVerify(root, ctx) {
  let controller = null;
  const keyInput = h('input', {
    type: 'text', id: 'pinned-key', autocomplete: 'off', spellcheck: 'false', class: 'mono wide',
    placeholder: 'base64 of the 32-byte Ed25519 key (empty: the key served at /v1/keys)',
    props: { value: ctx.pinnedKey() },
  });
  keyInput.addEventListener('change', () => ctx.setPinnedKey(keyInput.value.trim()));
  const keptInput = h('textarea', {
    id: 'kept-heads', rows: '2', spellcheck: 'false', class: 'mono wide', autocomplete: 'off',
    placeholder: '{"root_hash":"…","signature":"…","timestamp_ms":…,"tree_size":…}   (one per line)',
  });
  const start = h('button', { type: 'button', id: 'verify-start' }, 'Verify the log');
  const cancel = h('button', { type: 'button', id: 'verify-cancel', class: 'secondary', props: { disabled: true } }, 'Cancel');
  const progress = h('progress', { id: 'verify-progress', max: '1', value: '0' });
  const count = h('p', { id: 'verify-count', class: 'count' }, '');
  const result = h('div', { id: 'verify-result', class: 'result', dataset: { state: 'idle' } });

  const show = (state, headline, { detail = '', rows = [] } = {}) => {
    result.dataset.state = state;
    result.className = `result ${state}`;
    delete result.dataset.firstBadIndex;
    delete result.dataset.firstBadRange;
    clear(result).append(h('p', { class: 'headline', id: 'verify-headline' }, headline));
    if (detail) result.append(h('p', { class: 'detail', id: 'verify-detail' }, detail));
    if (rows.length) result.append(factTable(rows));
  };

  start.addEventListener('click', async () => {
    ctx.setPinnedKey(keyInput.value.trim());
    controller = new AbortController();
    start.disabled = true;
    cancel.disabled = false;
    progress.value = 0;
    progress.max = 1;
    count.textContent = '';
    show('running', 'Verifying…');
    const began = performance.now();
    try {
      const savedHeads = keptHeads(keptInput.value);
      const key = await gatewayKey(ctx.pinnedKey());
      const headBefore = await api.getJson('/v1/audit/tree-head', undefined, { signal: controller.signal });
      count.textContent = `Downloading the export (the latest signed head covers ${fmtInt(headBefore.tree_size)} entries)…`;
      progress.max = Math.max(1, Number(headBefore.tree_size) || 0);
      const res = await api.request('GET', '/v1/audit/export', { accept: 'application/x-ndjson', signal: controller.signal });
      const summary = await verifyExport({
        stream: res.body,
        gatewayKey: key,
        headBefore,
        savedHeads,
        signal: controller.signal,
        onProgress: ({ entries, expected, heads }) => {
          progress.max = Math.max(1, expected);
          progress.value = entries;
          count.textContent = `${fmtInt(entries)} of ${fmtInt(expected)} entries checked, ${fmtInt(heads)} signed tree head${heads === 1 ? '' : 's'} verified`;
        },
      });
      const ms = performance.now() - began;
      const took = ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
      show('verified', `Verified: ${fmtInt(summary.entries)} entries and ${fmtInt(summary.heads)} signed tree heads.`, { rows: [
        ['Covered by signed heads', `entries 0–${fmtInt(summary.covered - 1)} (tree_size ${fmtInt(summary.covered)})`],
        summary.uncovered > 0 && ['Not yet covered', `${fmtInt(summary.uncovered)} newer entries follow the last signed head (they are checked against their recorded hashes only)`],
        ['Tree head served before the export', `tree_size ${fmtInt(headBefore.tree_size)}: consistent with the export`],
        savedHeads.length > 0 && ['Tree heads you kept', `${savedHeads.length}, of sizes ${savedHeads.map((k) => fmtInt(Number(k.head.tree_size))).join(', ')}: consistent with the export`],
        ['Root of all entries', h('code', null, summary.root)],
        ['Gateway key', `${summary.keyId} (${key.origin})`],
        ['Time', took],
      ] });
      if (summary.newestHead) {
        const f = summary.newestHead;
        const line = JSON.stringify({ root_hash: f.root_hash, signature: f.signature, timestamp_ms: Number(f.timestamp_ms), tree_size: Number(f.tree_size) });
        result.append(h('p', { class: 'hint' }, 'Keep the newest signed head: pasted above next time, it proves that the log you will then see extends this one unchanged.'),
          h('pre', { class: 'json', id: 'newest-head' }, line));
      }
    } catch (err) {
      if (err && err.name === 'AbortError') {
        show('cancelled', 'Cancelled.');
        count.textContent += ' (cancelled)';
      } else if (err instanceof VerificationFailure) {
        const where = err.index !== null ? `FAILED at entry ${err.index}` : err.range ? `FAILED: the first bad entry is in [${err.range[0]}, ${err.range[1]})` : 'FAILED';
        show('failed', where, { detail: err.message });
        if (err.index !== null) result.dataset.firstBadIndex = String(err.index);
        if (err.range) result.dataset.firstBadRange = `${err.range[0]},${err.range[1]}`;
        count.textContent = `Stopped at the first departure from what the gateway signed${err.index !== null ? ` (entry ${fmtInt(err.index)})` : ''}; entries before it were checked.`;
        if (err.index !== null) progress.value = Math.min(err.index, progress.max);
        if (err.entry) {
          result.append(h('details', { class: 'altered', open: true },
            h('summary', null, `Entry ${err.index} as the log now holds it`),
            h('pre', { class: 'json', id: 'verify-entry' }, prettyJson(err.entry))));
        }
      } else {
        show('error', 'The log could not be verified.', { detail: describeError(err) });
      }
    } finally {
      start.disabled = false;
      cancel.disabled = true;
      controller = null;
    }
  });
  cancel.addEventListener('click', () => {
    if (controller) controller.abort();
  });

  clear(root).append(
    h('h2', null, 'Verify the log'),
    h('p', { class: 'lede' },
      'Downloads the whole log (GET /v1/audit/export) and checks it here, in this browser: each entry\'s canonical bytes against the leaf hash recorded when it was written, the index sequence, the Merkle root at every signed tree head and each head\'s Ed25519 signature. Nothing is taken on the gateway\'s word.'),
    h('label', { class: 'field wide' }, h('span', null, 'Trusted gateway key (optional)'), keyInput),
    h('p', { class: 'hint' }, 'A key obtained out of band (e.g. var/demo/gateway.pub) is what makes the check independent of the gateway; without one, the key the gateway serves is used and named in the result.'),
    h('label', { class: 'field wide' }, h('span', null, 'Tree heads you kept from earlier checks (optional)'), keptInput),
    h('p', { class: 'hint' }, 'Each must verify with the key and match the log at its size: the log cannot have been rewritten or cut below a head you kept.'),
    h('div', { class: 'buttons' }, start, cancel),
    progress, count, result);
}
