// The preview's pictures, drawn as SVG with createElementNS (dom.js `s`): no library, no inline
// style. Colours and fonts come from style.css (.chart ...). Each chart is an <svg role="img">
// with a <title>, and each bar carries a <title> with its exact figures (shown on hover).

import { s, h, fmtInt, fmtPct } from './dom.js';

const BUCKET_LABELS = (b) => (b.max === null || b.max === undefined ? `${fmtInt(b.min)}+` : b.min === b.max ? fmtInt(b.min) : `${fmtInt(b.min)}–${fmtInt(b.max)}`);

function svgRoot(className, width, height, title) {
  return s('svg', {
    class: ['chart', className],
    viewBox: `0 0 ${width} ${height}`,
    width: String(width),
    height: String(height),
    role: 'img',
    'aria-label': title,
    preserveAspectRatio: 'xMinYMin meet',
  }, s('title', null, title));
}

function text(x, y, content, className, anchor = 'start') {
  return s('text', { x: x.toFixed(1), y: y.toFixed(1), class: className, 'text-anchor': anchor }, content);
}

function rect(x, y, w, hgt, className, tip) {
  return s('rect', { x: x.toFixed(1), y: y.toFixed(1), width: Math.max(0, w).toFixed(1), height: Math.max(0, hgt).toFixed(1), class: className },
    tip ? s('title', null, tip) : null);
}

/** A "nice" upper bound for a share axis and its tick step: [top, step]. */
function niceShareAxis(max) {
  const axes = [[0.01, 0.002], [0.02, 0.005], [0.05, 0.01], [0.1, 0.02], [0.2, 0.05], [0.3, 0.1], [0.4, 0.1], [0.5, 0.1],
    [0.6, 0.2], [0.8, 0.2], [1, 0.25]];
  for (const axis of axes) if (max <= axis[0] + 1e-12) return axis;
  return [1, 0.25];
}

function legend(svg, x, y, items) {
  let cx = x;
  for (const [className, label] of items) {
    svg.append(rect(cx, y - 10, 12, 12, `swatch ${className}`));
    svg.append(text(cx + 17, y, label, 'legend'));
    cx += 30 + label.length * 7;
  }
}

/**
 * Class-size distribution before and after: for each bucket of equivalence-class sizes, the share
 * of records that sit in classes of that size. Buckets below the risk threshold are shaded.
 */
export function classSizeChart(before, after, threshold) {
  const buckets = (before && before.class_sizes) || (after && after.class_sizes) || [];
  const series = [
    ['before', before && before.class_sizes],
    ['after', after && after.class_sizes],
  ].filter(([, data]) => Array.isArray(data));
  const width = 680;
  const height = 300;
  const m = { left: 56, right: 16, top: 34, bottom: 56 };
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  const totals = Object.fromEntries(series.map(([name, data]) => [name, data.reduce((a, b) => a + (b.records || 0), 0)]));
  let maxShare = 0;
  for (const [name, data] of series) {
    for (const b of data) maxShare = Math.max(maxShare, totals[name] ? (b.records || 0) / totals[name] : 0);
  }
  const [top, step] = niceShareAxis(maxShare || 0.01);
  const svg = svgRoot('class-sizes', width, height, 'Records by the size of their equivalence class, before and after anonymization');
  legend(svg, m.left, 18, series.map(([name]) => [name, name === 'before' ? 'before (original values)' : 'after (released)']));
  const slot = plotW / Math.max(1, buckets.length);
  // shading: classes smaller than the threshold are the risky ones
  buckets.forEach((b, k) => {
    if (threshold && (b.max !== null && b.max !== undefined) && b.max < threshold) {
      svg.append(rect(m.left + k * slot, m.top, slot, plotH, 'below-threshold', `classes smaller than ${threshold}`));
    }
  });
  const ticks = Math.round(top / step);
  for (let t = 0; t <= ticks; t++) {
    const v = step * t;
    const y = m.top + plotH - (v / top) * plotH;
    svg.append(s('line', { x1: String(m.left), x2: String(m.left + plotW), y1: y.toFixed(1), y2: y.toFixed(1), class: 'grid' }));
    svg.append(text(m.left - 6, y + 4, fmtPct(v, step < 0.01 ? 1 : 0), 'tick', 'end'));
  }
  const barW = (slot * 0.8) / Math.max(1, series.length);
  buckets.forEach((bucket, k) => {
    series.forEach(([name, data], j) => {
      const b = data[k] || { classes: 0, records: 0 };
      const share = totals[name] ? (b.records || 0) / totals[name] : 0;
      const hgt = (share / top) * plotH;
      const x = m.left + k * slot + slot * 0.1 + j * barW;
      svg.append(rect(x, m.top + plotH - hgt, barW - 2, hgt, `bar ${name}`,
        `${name}: ${fmtInt(b.records || 0)} records (${fmtPct(share, 1)}) in ${fmtInt(b.classes || 0)} classes of size ${BUCKET_LABELS(bucket)}`));
    });
    svg.append(text(m.left + k * slot + slot / 2, m.top + plotH + 16, BUCKET_LABELS(bucket), 'tick', 'middle'));
  });
  svg.append(s('line', { x1: String(m.left), x2: String(m.left + plotW), y1: String(m.top + plotH), y2: String(m.top + plotH), class: 'axis' }));
  svg.append(text(m.left + plotW / 2, height - 12, 'size of the equivalence class (records sharing the same quasi-identifier values)', 'axis-label', 'middle'));
  return svg;
}

/** Information loss per quasi-identifier, 0 (original values) to 1 (fully generalized). */
export function columnLossChart(columnLoss) {
  const entries = Object.entries(columnLoss || {});
  const rowH = 30;
  const width = 680;
  const m = { left: 150, right: 70, top: 16, bottom: 30 };
  const height = m.top + m.bottom + rowH * Math.max(1, entries.length);
  const plotW = width - m.left - m.right;
  const svg = svgRoot('column-loss', width, height, 'Information loss per quasi-identifier (0 = original values, 100 % = fully generalized)');
  for (let t = 0; t <= 4; t++) {
    const x = m.left + (plotW * t) / 4;
    svg.append(s('line', { x1: x.toFixed(1), x2: x.toFixed(1), y1: String(m.top), y2: String(height - m.bottom), class: 'grid' }));
    svg.append(text(x, height - m.bottom + 16, `${t * 25} %`, 'tick', 'middle'));
  }
  entries.forEach(([column, loss], k) => {
    const y = m.top + k * rowH;
    const v = Math.min(1, Math.max(0, Number(loss) || 0));
    svg.append(text(m.left - 8, y + rowH / 2 + 4, column, 'label', 'end'));
    svg.append(rect(m.left, y + 5, plotW, rowH - 10, 'track'));
    svg.append(rect(m.left, y + 5, plotW * v, rowH - 10, 'bar loss', `${column}: ${fmtPct(v, 1)} information loss`));
    svg.append(text(m.left + plotW + 6, y + rowH / 2 + 4, fmtPct(v, 1), 'value'));
  });
  return svg;
}

/** Released and suppressed rows of the selected ones, with the policy's suppression limit marked. */
export function suppressionChart(selected, suppressed, limit) {
  const width = 680;
  const height = 96;
  const m = { left: 16, right: 16, top: 30 };
  const plotW = width - m.left - m.right;
  const svg = svgRoot('suppression', width, height, 'Rows released and suppressed');
  const total = Math.max(1, selected);
  const share = suppressed / total;
  // A sliver of suppression would be invisible at true scale: at least 2 px when there is any.
  const supW = suppressed > 0 ? Math.max(2, plotW * share) : 0;
  svg.append(rect(m.left, m.top, plotW - supW, 28, 'bar released', `${fmtInt(selected - suppressed)} rows released`));
  svg.append(rect(m.left + plotW - supW, m.top, supW, 28, 'bar suppressed', `${fmtInt(suppressed)} rows suppressed (${fmtPct(share)})`));
  if (typeof limit === 'number' && limit > 0 && limit < 1) {
    const x = m.left + plotW * (1 - limit);
    svg.append(s('line', { x1: x.toFixed(1), x2: x.toFixed(1), y1: String(m.top - 6), y2: String(m.top + 34), class: 'limit' }, s('title', null, `suppression limit ${fmtPct(limit)}`)));
    svg.append(text(x, m.top - 10, `limit ${fmtPct(limit, 1)}`, 'tick', 'middle'));
  }
  svg.append(text(m.left, m.top + 50, `${fmtInt(selected - suppressed)} released`, 'legend'));
  svg.append(text(width - m.right, m.top + 50, `${fmtInt(suppressed)} suppressed (${fmtPct(share)})`, 'legend', 'end'));
  return svg;
}

const RISK_MEASURES = [
  ['prosecutor_risk_max', 'highest re-identification risk', 'the risk of the most exposed record: 1 / the smallest class'],
  ['prosecutor_risk_average', 'average re-identification risk', 'the mean over records of 1 / their class size'],
  ['share_below_threshold', 'records in classes below the threshold', 'share of records whose class is smaller than the risk threshold'],
  ['sample_unique_share', 'unique records', 'share of records alone in their class'],
];

/** Re-identification risk before and after, each measure a share in [0, 1]. */
export function riskChart(before, after) {
  const series = [['before', before], ['after', after]].filter(([, r]) => r);
  const groupH = 22 * series.length + 14;
  const width = 680;
  const m = { left: 250, right: 70, top: 30, bottom: 28 };
  const height = m.top + m.bottom + groupH * RISK_MEASURES.length;
  const plotW = width - m.left - m.right;
  const svg = svgRoot('risk', width, height, 'Re-identification risk before and after anonymization');
  legend(svg, m.left, 16, series.map(([name]) => [name, name]));
  for (let t = 0; t <= 4; t++) {
    const x = m.left + (plotW * t) / 4;
    svg.append(s('line', { x1: x.toFixed(1), x2: x.toFixed(1), y1: String(m.top), y2: String(height - m.bottom), class: 'grid' }));
    svg.append(text(x, height - m.bottom + 16, `${t * 25} %`, 'tick', 'middle'));
  }
  RISK_MEASURES.forEach(([key, label, explanation], k) => {
    const y0 = m.top + k * groupH;
    svg.append(text(m.left - 8, y0 + groupH / 2 + 4, label, 'label', 'end'));
    series.forEach(([name, r], j) => {
      const v = Math.min(1, Math.max(0, Number(r[key]) || 0));
      const y = y0 + 4 + j * 22;
      svg.append(rect(m.left, y, Math.max(v > 0 ? 1.5 : 0, plotW * v), 18, `bar ${name}`, `${label} ${name}: ${fmtPct(v, 3)} (${explanation})`));
      svg.append(text(m.left + plotW * v + 6, y + 13, fmtPct(v, 2), 'value'));
    });
  });
  return svg;
}

/**
 * The persons of a linkage join: those in classes below k, and those whose class is not l-diverse
 * or not t-close for a release they are in, each out of all persons (one bar each).
 */
export function linkageChart(persons, belowK, notL, notT) {
  const rows = [
    ['below k', belowK, 'in classes smaller than the k of a release they are in'],
    ['not l-diverse', notL, 'in classes not l-diverse for a release they are in'],
    ['not t-close', notT, 'in classes not t-close for a release they are in'],
  ];
  const rowH = 30;
  const width = 680;
  const m = { left: 120, right: 150, top: 8, bottom: 8 };
  const height = m.top + m.bottom + rowH * rows.length;
  const plotW = width - m.left - m.right;
  const svg = svgRoot('linkage', width, height, 'Persons of the join in classes that break k, l or t');
  const total = Math.max(1, persons);
  rows.forEach(([label, n, what], k) => {
    const y = m.top + k * rowH;
    const share = Math.min(1, Math.max(0, n / total));
    svg.append(text(m.left - 8, y + rowH / 2 + 4, label, 'label', 'end'));
    svg.append(rect(m.left, y + 5, plotW, rowH - 10, 'track', `${fmtInt(persons)} persons in all`));
    // a handful of persons out of many would be invisible at true scale: at least 2 px when any
    const w = n > 0 ? Math.max(2, plotW * share) : 0;
    svg.append(rect(m.left, y + 5, w, rowH - 10, `bar ${n > 0 ? 'breaks' : 'keeps'}`, `${fmtInt(n)} of ${fmtInt(persons)} persons (${fmtPct(share)}) ${what}`));
    svg.append(text(m.left + plotW + 6, y + rowH / 2 + 4, `${fmtInt(n)} of ${fmtInt(persons)}`, 'value'));
  });
  return svg;
}

/** A small caption block under a chart. */
export function caption(...children) {
  return h('p', { class: 'caption' }, ...children);
}
