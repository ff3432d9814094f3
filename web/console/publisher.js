// The publisher's screens: sources; datasets with their policies; a policy's versions, the diff
// between two versions, and its preview (risk and information loss) drawn as pictures.

import * as api from './api.js';
import { h, clear, fmtInt, fmtPct, fmtNum, message, factTable } from './dom.js';
import { lineDiff, renderDiff } from './diff.js';
import { classSizeChart, columnLossChart, suppressionChart, riskChart, linkageChart, caption } from './charts.js';
import { compareUtf8 } from './canonical.js';

function describeError(err) {
  if (err instanceof api.ApiError) {
    const details = Array.isArray(err.details)
      ? err.details.map((d) => (d && d.pointer !== undefined ? `${d.pointer}: ${d.message}` : JSON.stringify(d))).join('; ')
      : '';
    return details ? `${err.describe()} (${details})` : err.describe();
  }
  return err && err.message ? err.message : String(err);
}

async function guarded(status, fn) {
  clear(status).append(message('info', 'Loading…'));
  try {
    await fn();
    clear(status);
  } catch (err) {
    clear(status).append(message('error', describeError(err)));
  }
}

/** JSON with members sorted (the order the content hash sees), two-space indented: for diffs. */
function sortedJson(value) {
  const sort = (v) => {
    if (Array.isArray(v)) return v.map(sort);
    if (v && typeof v === 'object') {
      const o = {};
      for (const k of Object.keys(v).sort(compareUtf8)) {
        Object.defineProperty(o, k, { value: sort(v[k]), enumerable: true, writable: true, configurable: true });
      }
      return o;
    }
    return v;
  };
  return JSON.stringify(sort(value), null, 2);
}

// ---- sources ----------------------------------------------------------------------------------------

export function mountSources(root) {
  const status = h('div', { class: 'status' });
  const list = h('div', { class: 'table-wrap', id: 'sources' });
  const detail = h('div', { class: 'panel', id: 'source-detail', hidden: true });
  clear(root).append(
    h('h2', null, 'Sources'),
    h('p', { class: 'lede' }, 'The agency databases registered with the gateway. Connection secrets are stored encrypted and never shown.'),
    status, list, detail);

  guarded(status, async () => {
    const { sources } = await api.getJson('/v1/sources');
    if (!sources.length) {
      list.append(message('info', 'No sources yet (PUT /v1/sources/{name}).'));
      return;
    }
    list.append(h('table', { class: 'grid' },
      h('thead', null, h('tr', null, ['Name', 'Agency', 'Created by', 'Updated'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', null, sources.map((src) => {
        const open = h('button', { type: 'button', class: 'link' }, src.name);
        open.addEventListener('click', () => showSource(src.name));
        return h('tr', null, h('td', null, open), h('td', null, src.agency), h('td', null, src.created_by), h('td', null, src.updated_at));
      }))));
  });

  async function showSource(name) {
    detail.hidden = false;
    const st = h('div', { class: 'status' });
    clear(detail).append(h('h3', null, `Source ${name}`), st);
    await guarded(st, async () => {
      const src = await api.getJson(api.path('v1', 'sources', name));
      const c = src.connection || {};
      detail.append(factTable([
        ['Agency', src.agency],
        ['Created', `${src.created_at} by ${src.created_by}`],
        ['Updated', src.updated_at],
        ...Object.entries(c).map(([k, v]) => [`connection ${k}`, String(v)]),
      ]));
    });
  }
}

// ---- datasets -----------------------------------------------------------------------------------------

export function mountDatasets(root) {
  const status = h('div', { class: 'status' });
  const list = h('div', { id: 'datasets', class: 'cards' });
  const detail = h('div', { id: 'dataset-detail' });
  clear(root).append(
    h('h2', null, 'Datasets'),
    h('p', { class: 'lede' }, 'The datasets of your agency and their release policies. Open a policy for its versions, a diff between two of them, and a preview of what a release would look like.'),
    status, list, detail);

  guarded(status, async () => {
    const { datasets } = await api.getJson('/v1/datasets');
    if (!datasets.length) {
      list.append(message('info', 'No datasets yet (PUT /v1/datasets/{name}).'));
      return;
    }
    for (const ds of datasets) list.append(datasetCard(ds, detail));
  });
}

function datasetCard(ds, detail) {
  const columns = h('button', { type: 'button', class: 'secondary small' }, 'Columns');
  columns.addEventListener('click', () => showColumns(ds.name, detail));
  const policies = (ds.policies || []).map((p) => {
    const open = h('button', { type: 'button', class: 'link policy-link', dataset: { dataset: ds.name, policy: p.name } }, p.name);
    open.addEventListener('click', () => showPolicy(ds.name, p.name, detail));
    return h('li', null, open, ` version ${p.version}`,
      p.retired ? h('span', { class: 'badge retired' }, 'retired') : null,
      p.transparency ? h('span', { class: ['badge', `transparency-${p.transparency}`], title: 'transparency register' }, p.transparency) : null);
  });
  return h('article', { class: 'card dataset', dataset: { name: ds.name } },
    h('h3', { class: 'dataset-name' }, ds.name),
    h('p', { class: 'meta' }, `${ds.agency} · source ${ds.source} · table ${ds.table}`),
    ds.description ? h('p', { class: 'description dataset-description' }, ds.description) : h('p', { class: 'description muted' }, 'No description.'),
    h('h4', null, 'Policies'),
    policies.length ? h('ul', { class: 'policies' }, policies) : h('p', { class: 'muted' }, 'No policies yet.'),
    h('div', { class: 'buttons' }, columns));
}

async function showColumns(name, detail) {
  const status = h('div', { class: 'status' });
  clear(detail).append(h('section', { class: 'panel' }, h('h3', null, `Dataset ${name}: columns`), status));
  await guarded(status, async () => {
    const ds = await api.getJson(api.path('v1', 'datasets', name));
    status.after(h('table', { class: 'grid' },
      h('thead', null, h('tr', null, ['Column', 'Type', 'Role', 'Hierarchy'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', null, ds.columns.map((c) => h('tr', { class: `role-${c.role}` },
        h('td', { class: 'mono' }, c.name), h('td', null, c.type), h('td', null, c.role.replace('_', '-')),
        h('td', { class: 'mono' }, ds.hierarchies && ds.hierarchies[c.name] ? JSON.stringify(ds.hierarchies[c.name]) : ''))))));
  });
  detail.scrollIntoView({ block: 'nearest' });
}

// ---- a policy: versions, diff, preview -------------------------------------------------------------------

async function showPolicy(dataset, policy, detail) {
  const status = h('div', { class: 'status' });
  const panel = h('section', { class: 'panel policy', id: 'policy-view' }, h('h3', null, `Policy ${policy} of ${dataset}`), status);
  clear(detail).append(panel);
  await guarded(status, async () => {
    const view = await api.getJson(api.path('v1', 'datasets', dataset, 'policies', policy));
    const history = [...(view.history || [])].sort((a, b) => a.version - b.version);
    panel.append(factTable([
      ['Current version', `${view.version}${view.retired ? ` (retired ${view.retired_at ?? ''})` : ''}`],
      ['Content hash', h('code', null, view.content_hash)],
      view.document && view.document.description ? ['Description', view.document.description] : null,
    ]));

    panel.append(h('h4', null, 'Versions'), h('table', { class: 'grid', id: 'policy-history' },
      h('thead', null, h('tr', null, ['Version', 'Created', 'By', 'Content hash'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', null, history.map((v) => h('tr', null,
        h('td', { class: 'num' }, String(v.version)), h('td', null, v.created_at), h('td', null, v.created_by),
        h('td', null, h('code', { class: 'hash' }, v.content_hash)))))));

    // diff between two versions
    const versions = history.map((v) => v.version);
    const pick = (id, selected) => h('select', { id }, versions.map((v) => h('option', { value: String(v), props: { selected: v === selected } }, `version ${v}`)));
    const fromSel = pick('diff-from', versions.length > 1 ? versions[versions.length - 2] : versions[0]);
    const toSel = pick('diff-to', versions[versions.length - 1]);
    const diffOut = h('div', { id: 'policy-diff' });
    const diffButton = h('button', { type: 'button', id: 'diff-show' }, 'Show the differences');
    diffButton.addEventListener('click', () => showDiff(dataset, policy, Number(fromSel.value), Number(toSel.value), diffOut, view));
    panel.append(h('h4', null, 'Differences between versions'),
      h('div', { class: 'inline-form' }, h('label', null, 'from ', fromSel), h('label', null, ' to ', toSel), diffButton),
      diffOut);

    // preview
    const previewOut = h('div', { id: 'preview' });
    const previewButton = h('button', { type: 'button', id: 'preview-run' }, 'Preview the release');
    // Optional: a partner, to also see what the release would add to what that partner can
    // already join (?recipient=, docs/security.md "Releases that could be joined").
    const named = ((view.document && view.document.recipients) || []).filter((r) => typeof r === 'string' && !r.startsWith('group:'));
    const recipientList = h('datalist', { id: 'preview-recipients' }, named.map((r) => h('option', { value: r })));
    const recipientInput = h('input', {
      type: 'text', id: 'preview-recipient', name: 'recipient', list: 'preview-recipients',
      autocomplete: 'off', spellcheck: 'false', placeholder: 'partner name (optional)',
    });
    const run = async () => {
      previewButton.disabled = true;
      try {
        await runPreview(dataset, policy, previewOut, recipientInput.value.trim());
      } finally {
        previewButton.disabled = false;
      }
    };
    previewButton.addEventListener('click', run);
    recipientInput.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && !previewButton.disabled) { ev.preventDefault(); run(); }
    });
    panel.append(h('h4', null, 'Preview'),
      h('p', { class: 'hint' }, 'A dry run of the current version on the live source: the risk and information-loss report, no row released. It can take a while on a large table. ' +
        'With a partner named, it also checks the release against what that partner already holds in the same key scope, joined on the shared pseudonyms, as an extract would be checked.'),
      h('div', { class: 'inline-form preview-form' }, previewButton,
        h('label', { class: 'recipient-field', for: 'preview-recipient' }, 'for recipient ', recipientInput), recipientList),
      previewOut);

    panel.append(h('details', { class: 'document' }, h('summary', null, `The document of version ${view.version}`),
      h('pre', { class: 'json' }, sortedJson(view.document))));
  });
  panel.scrollIntoView({ block: 'nearest' });
}

const versionCache = new Map();

async function versionDocument(dataset, policy, version, current) {
  if (current && current.version === version) return current.document;
  const key = JSON.stringify([dataset, policy, version]);
  if (!versionCache.has(key)) {
    const v = await api.getJson(api.path('v1', 'datasets', dataset, 'policies', policy, 'versions', String(version)));
    versionCache.set(key, v.document);
  }
  return versionCache.get(key);
}

export function forgetPublisherState() {
  versionCache.clear();
}

async function showDiff(dataset, policy, from, to, out, current) {
  const status = h('div', { class: 'status' });
  clear(out).append(status);
  await guarded(status, async () => {
    const [a, b] = await Promise.all([versionDocument(dataset, policy, from, current), versionDocument(dataset, policy, to, current)]);
    out.append(renderDiff(lineDiff(sortedJson(a), sortedJson(b)), { labelA: `version ${from}`, labelB: `version ${to}` }));
  });
}

async function runPreview(dataset, policy, out, recipient = '') {
  const status = h('div', { class: 'status' });
  clear(out).append(status);
  clear(status).append(message('info', recipient
    ? `Computing the preview on the source, and its join with what ${recipient} holds…`
    : 'Computing the preview on the source…'));
  let p;
  try {
    const where = api.path('v1', 'datasets', dataset, 'policies', policy, 'preview') +
      (recipient ? `?recipient=${encodeURIComponent(recipient)}` : '');
    p = await api.postJson(where);
  } catch (err) {
    clear(status).append(message('error', describeError(err)));
    return;
  }
  clear(status);
  renderPreview(p, out, recipient);
}

/** The preview report as pictures (exported for reuse; `p` is the Preview document). */
export function renderPreview(p, out, recipient = '') {
  const before = p.risk_before;
  const after = p.risk_after;
  const released = after ? after.records_released : 0;
  const suppressed = after ? after.records_suppressed : 0;

  out.append(h('div', { class: ['verdict', p.releasable ? 'ok' : 'fail'], id: 'preview-verdict' },
    p.releasable
      ? `Releasable: ${fmtInt(released)} of ${fmtInt(p.records_selected)} selected rows would be released under ${p.models}.`
      : `Not releasable under ${p.models}.`));
  if (!p.releasable && p.unreachable) {
    out.append(message('error', h('strong', null, `${p.unreachable.requirement}: `), p.unreachable.message));
  }
  if (p.linkage) {
    out.append(renderLinkage(p.linkage, p.linkage.recipient || recipient));
  } else if (recipient) {
    out.append(h('section', { class: 'linkage', id: 'preview-linkage' },
      h('h5', null, `Joined with what ${recipient} holds`),
      message('info', `The join with ${recipient}'s earlier releases is checked only for a release that can be made; this one cannot.`)));
  }
  out.append(factTable([
    ['Policy version', `${p.policy_version} (${p.policy_sha256.slice(0, 16)}…)`],
    ['Rows selected', fmtInt(p.records_selected)],
    ['Suppression limit', fmtPct(p.suppression_limit)],
    p.generalization && ['Generalization', Object.entries(p.generalization).map(([c, g]) => `${c} level ${g.level} of ${g.levels - 1}`).join(', ')],
    p.partitioning && ['Partitioning', `${p.partitioning.algorithm}: ${fmtInt(p.partitioning.classes)} classes`],
    (p.search_seconds !== undefined) && ['Search time', `${fmtNum(p.search_seconds, 3)} s`],
  ], 'facts preview-facts'));

  const figure = (id, title, chart, ...notes) => h('figure', { class: 'chart-figure', id }, h('figcaption', null, title), chart, ...notes);

  if (before || after) {
    if ((before && before.class_sizes) || (after && after.class_sizes)) {
      out.append(figure('chart-class-sizes', 'Class-size distribution',
        classSizeChart(before, after, (after || before).risk_threshold),
        caption(`Share of records by the size of the group of records they cannot be told apart from. Shaded: classes smaller than the risk threshold (${fmtInt((after || before).risk_threshold)}). ` +
          (before && after
            ? `Classes: ${fmtInt(before.classes)} before, ${fmtInt(after.classes)} after; the smallest ${fmtInt(before.smallest_class)} before, ${fmtInt(after.smallest_class)} after.`
            : `Classes: ${fmtInt((before || after).classes)}, the smallest of ${fmtInt((before || after).smallest_class)} records.`))));
    } else {
      out.append(message('warn', 'The gateway did not report class sizes (class_sizes), so the distribution cannot be drawn.'));
    }

    const loss = p.column_loss || (p.partitioning && p.partitioning.ncp && p.partitioning.ncp.attributes);
    if (loss && Object.keys(loss).length) {
      out.append(figure('chart-column-loss', 'Information loss per quasi-identifier', columnLossChart(loss),
        caption('0 % is the original value; 100 % is generalized to the top of its hierarchy (or suppressed).')));
    } else if (p.releasable) {
      out.append(message('info', 'No per-column information loss to show (no quasi-identifiers, or not reported).'));
    }

    if (after) {
      out.append(figure('chart-suppression', 'Suppressed rows', suppressionChart(p.records_selected, suppressed, p.suppression_limit),
        caption(`${fmtInt(suppressed)} of ${fmtInt(p.records_selected)} selected rows (${fmtPct(p.records_selected ? suppressed / p.records_selected : 0)}) would be left out; the policy allows ${fmtPct(p.suppression_limit)}.`)));
    }

    out.append(figure('chart-risk', 'Re-identification risk', riskChart(before, after),
      caption('Prosecutor model: an attacker who knows a person is in the data and knows their quasi-identifiers. Lower is better.')));
  } else {
    out.append(message('info', 'No row is selected by the policy: there is nothing to measure.'));
  }
}

const plural = (n, one, many) => `${fmtInt(n)} ${n === 1 ? one : many}`;

/**
 * The `linkage` member of a preview for ?recipient= (docs/openapi.yaml schema Linkage): would an
 * extract for that partner keep k (and l, t) over the join with what it already holds?
 */
export function renderLinkage(l, name) {
  const earlier = Array.isArray(l.earlier_releases) ? l.earlier_releases : [];
  const checked = Array.isArray(l.checked_against) ? l.checked_against : [];
  const joined = new Set(checked.map((e) => e.extract_id));
  const hasJoin = typeof l.persons === 'number';
  const who = name || 'this recipient';
  const scope = l.scope === '*' ? '"*" (every policy of the dataset: releases keyed per dataset and recipient)' : `"${l.scope}"`;

  let verdict;
  if (!l.keeps_k) {
    verdict = `An extract for ${who} would be refused: ${l.message || l.problem || 'k would not hold over the join with its earlier releases.'}`;
  } else if (!earlier.length) {
    verdict = `An extract for ${who} would keep k over the join: nothing held — ${who} has no earlier release in the key scope ${scope}.`;
  } else if (!checked.length) {
    verdict = `An extract for ${who} would keep k over the join: its ${plural(earlier.length, 'earlier release', 'earlier releases')} in the key scope ${scope} ${earlier.length === 1 ? 'is' : 'are'} of this same policy version, so there is nothing new to join.`;
  } else {
    verdict = `An extract for ${who} would keep k over the join with its ${plural(checked.length, 'other policy version', 'other policy versions')}` +
      (hasJoin ? `: ${plural(l.persons, 'person', 'persons')} in ${plural(l.classes, 'class', 'classes')}, the smallest of ${fmtInt(l.smallest_class)} (k ${fmtInt(l.k)}).` : '.');
  }

  const section = h('section', { class: 'linkage', id: 'preview-linkage' },
    h('h5', null, `Joined with what ${who} holds`),
    h('div', { class: ['verdict', l.keeps_k ? 'ok' : 'fail'], id: 'preview-linkage-verdict', dataset: { keepsK: String(Boolean(l.keeps_k)) } }, verdict));
  if (l.problem && l.problem !== l.message) section.append(message('error', h('strong', null, 'Cannot be checked: '), l.problem));

  const dash = (v) => (typeof v === 'number' ? fmtInt(v) : '–');
  section.append(factTable([
    ['Recipient', who],
    ['Key scope', l.scope === undefined ? '–' : h('code', null, l.scope)],
    hasJoin && ['Joined on', l.identity_column ? h('code', null, l.identity_column) : 'no shared pseudonymized column: nothing joins'],
    hasJoin && ['k over the join', `${dash(l.k)} (the largest k of the releases joined)`],
    hasJoin && ['Persons', dash(l.persons)],
    hasJoin && ['Classes', `${dash(l.classes)}, the smallest of ${dash(l.smallest_class)}`],
    hasJoin && ['Persons below k', dash(l.persons_below_k)],
    hasJoin && ['Persons not l-diverse', dash(l.persons_not_l_diverse)],
    hasJoin && ['Persons not t-close', dash(l.persons_not_t_close)],
  ], 'facts linkage-facts'));

  if (earlier.length) {
    section.append(h('table', { class: 'grid', id: 'linkage-releases' },
      h('caption', null, `Earlier releases to ${who} in this key scope`),
      h('thead', null, h('tr', null, ['Extract', 'Policy', 'Version', 'Started', 'In the join'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', null, earlier.map((e) => h('tr', { dataset: { extractId: e.extract_id } },
        h('td', null, h('code', { class: 'extract-id' }, e.extract_id)),
        h('td', null, e.policy),
        h('td', { class: 'num' }, String(e.policy_version)),
        h('td', null, e.started_at),
        h('td', null, joined.has(e.extract_id) ? 'rebuilt and joined' : 'the same version: nothing new to join'))))));
  } else {
    section.append(h('p', { class: 'muted', id: 'linkage-nothing-held' }, `Nothing held: no extract of this key scope has been sent to ${who}.`));
  }

  if (hasJoin && l.persons > 0) {
    section.append(h('figure', { class: 'chart-figure', id: 'chart-linkage' }, h('figcaption', null, 'Persons over the join'),
      linkageChart(l.persons, l.persons_below_k || 0, l.persons_not_l_diverse || 0, l.persons_not_t_close || 0),
      caption(`Every person ${who} would hold falls into one class of the join. ${fmtInt(l.persons_below_k || 0)} of ${fmtInt(l.persons)} ` +
        `(${fmtPct((l.persons_below_k || 0) / l.persons)}) would be in classes smaller than the k of a release they are in.`)));
  }
  return section;
}
