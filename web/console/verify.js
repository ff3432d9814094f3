// "Verify the log" in the browser: the procedure of docs/formats/audit.md ("Verifying an export"),
// the same checks as `custodian audit verify --url`, over the NDJSON export streamed from the
// gateway:
//
//  1. each entry's index is the number of entries read so far;
//  2. its canonical bytes are recomputed from the entry object (canonical.js) and hashed as a leaf;
//     the hash must equal the leaf_hash the log recorded when the entry was appended;
//  3. each signed tree head: its Ed25519 signature with the gateway key, its size and time not
//     going backwards, and its root against the Merkle root recomputed at its size;
//  4. the head the gateway served before the export (GET /v1/audit/tree-head) is checked the same
//     way, so an export with its tail cut off cannot pass; a head larger than the export is a
//     truncation; entries after the last signed head are reported as not yet covered.
//
// The first index at which the export departs from what was signed is reported, with the reason.
// Work is done in batches, hashes of a batch requested from WebCrypto together, with a pause for
// the event loop between batches, so a log of 100,000 entries keeps the tab responsive.

import { parseJson, canonicalBytes, canonicalText, member, JsonNumber, JsonError } from './canonical.js';
import { CompactTree, leafHash, rootOf, toHex, fromHex32, equalBytes, verifyTreeHead } from './merkle.js';

const BATCH = 2048;

export class VerificationFailure extends Error {
  /** index: the first bad entry index (or null); range: [from, to) when only a signed root reveals it. */
  constructor(message, { index = null, range = null, line = null, entry = null, checked = 0 } = {}) {
    super(message);
    this.name = 'VerificationFailure';
    this.index = index;
    this.range = range;
    this.line = line;
    this.entry = entry; // the offending entry as the export holds it (parsed), when there is one
    this.checked = checked; // entries that verified before it
  }
}

function num(v) {
  if (v instanceof JsonNumber && /^(?:0|[1-9][0-9]*)$/.test(v.raw)) return Number(v.raw);
  return NaN;
}

function headFields(obj) {
  const f = (name) => {
    const v = member(obj, name);
    return v instanceof JsonNumber ? v.raw : v;
  };
  return { tree_size: f('tree_size'), timestamp_ms: f('timestamp_ms'), root_hash: f('root_hash'), signature: f('signature') };
}

/** Leaf hashes kept in one growing buffer (32 bytes each), for roots at sizes already passed. */
class LeafStore {
  constructor() {
    this.buf = new Uint8Array(32 * 4096);
    this.count = 0;
  }

  push(hash) {
    if ((this.count + 1) * 32 > this.buf.length) {
      const bigger = new Uint8Array(this.buf.length * 2);
      bigger.set(this.buf);
      this.buf = bigger;
    }
    this.buf.set(hash, this.count * 32);
    this.count++;
  }

  leaves(n) {
    const out = new Array(n);
    for (let k = 0; k < n; k++) out[k] = this.buf.subarray(32 * k, 32 * k + 32);
    return out;
  }
}

/** Splits a stream of text into lines, yielding [lineNumber, text]. */
async function* lines(stream) {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let rest = '';
  let number = 0;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      rest += value;
      let start = 0;
      for (let nl = rest.indexOf('\n'); nl >= 0; nl = rest.indexOf('\n', start)) {
        number++;
        yield [number, rest.slice(start, nl)];
        start = nl + 1;
      }
      rest = rest.slice(start);
    }
    if (rest.length) yield [number + 1, rest];
  } finally {
    // Stopped early (a failure, a cancel): stop the download too.
    reader.cancel().catch(() => {});
  }
}

// Gives the event loop a turn (rendering, input, timers) when the work has held it for a while.
const SLICE_MS = 40;
let sliceStart = 0;
async function yieldSometimes() {
  if (performance.now() - sliceStart < SLICE_MS) return;
  await new Promise((resolve) => setTimeout(resolve, 0));
  sliceStart = performance.now();
}

/**
 * Verifies an export.
 *   stream:     ReadableStream of the NDJSON export
 *   gatewayKey: from merkle.importGatewayKey
 *   headBefore: the tree head served before the export (plain object), or null
 *   savedHeads: heads the auditor kept from earlier checks, [{head, label}], each checked like
 *               headBefore: its signature, and its root against the export at its size
 *   onProgress: ({entries, expected, heads}) => void, called after each batch
 *   signal:     AbortSignal
 * Resolves to a summary; rejects with VerificationFailure when the log does not verify.
 */
export async function verifyExport({ stream, gatewayKey, headBefore = null, savedHeads = [], onProgress = () => {}, signal }) {
  const tree = new CompactTree();
  const store = new LeafStore();
  const pending = []; // heads waiting until the tree reaches their size: {size, root, label, line}
  let batch = []; // entries read, not yet hashed: {line, index, entry, recorded}
  let lastVerified = null; // {size, timestamp}
  let headsVerified = 0;
  let expected = headBefore ? Number(headBefore.tree_size) : 0;
  let latestRoot = null;
  let newestHead = null; // the largest signed head of the export, as served (for the auditor to keep)

  // Every head verified against the tree, in size order, so that a root mismatch can be placed
  // between the last head that verified and the failing one.
  const checkRoot = async (head, root) => {
    if (!equalBytes(root, head.root)) {
      const from = lastVerified ? lastVerified.size : 0;
      throw new VerificationFailure(
        `${head.label} (tree_size ${head.size}) is signed over root ${toHex(head.root)}, but the entries give ${toHex(root)}: ` +
          `an entry in [${from}, ${head.size}) was altered together with its recorded leaf hash, or entries were inserted or removed there`,
        { range: [from, head.size], line: head.line },
      );
    }
    if (lastVerified && head.size < lastVerified.size && !head.outOfOrder) {
      throw new VerificationFailure(`${head.label} (tree_size ${head.size}) is smaller than an earlier head (${lastVerified.size})`, { line: head.line });
    }
    if (lastVerified && head.size >= lastVerified.size && head.timestamp < lastVerified.timestamp) {
      throw new VerificationFailure(
        `${head.label} (tree_size ${head.size}) is dated before the head of size ${lastVerified.size}: signed heads never go back in time`,
        { line: head.line },
      );
    }
    if (!lastVerified || head.size >= lastVerified.size) lastVerified = { size: head.size, timestamp: head.timestamp };
    if (head.counts) headsVerified++;
  };

  const nextPendingSize = () => (pending.length ? pending[0].size : Infinity);

  const settlePending = async () => {
    while (pending.length && pending[0].size === tree.size) {
      const head = pending.shift();
      await checkRoot(head, await tree.root());
    }
  };

  // A head whose signature verified: check it now, or when the tree reaches its size.
  const placeHead = async (head) => {
    expected = Math.max(expected, head.size);
    if (head.size === tree.size) {
      await checkRoot(head, await tree.root());
    } else if (head.size < tree.size) {
      head.outOfOrder = true;
      await checkRoot(head, await rootOf(store.leaves(head.size)));
    } else {
      pending.push(head);
      pending.sort((a, b) => a.size - b.size);
    }
  };

  const flush = async () => {
    if (!batch.length) return;
    const items = batch;
    batch = [];
    // Canonical bytes first (synchronous): a malformed entry fails at its index.
    const bytes = items.map((item) => {
      try {
        return canonicalBytes(item.entry);
      } catch (err) {
        throw new VerificationFailure(`entry ${item.index} (line ${item.line}) is not canonical JSON: ${err.message}`, {
          index: item.index,
          line: item.line,
        });
      }
    });
    const hashes = await Promise.all(bytes.map((b) => leafHash(b)));
    items.forEach((item, k) => {
      if (item.recorded && !equalBytes(hashes[k], item.recorded)) {
        throw new VerificationFailure(
          `entry ${item.index} (line ${item.line}): its bytes hash to ${toHex(hashes[k])}, but the log recorded ` +
            `leaf hash ${toHex(item.recorded)} when it was appended: the entry was altered afterwards`,
          { index: item.index, line: item.line, entry: item.entry, checked: item.index },
        );
      }
    });
    for (const h of hashes) store.push(h);
    // Append up to each pending head's size, checking it there.
    let p = 0;
    while (p < hashes.length) {
      const take = Math.min(hashes.length - p, nextPendingSize() - tree.size);
      await tree.append(hashes.slice(p, p + take));
      p += take;
      await settlePending();
    }
  };

  if (headBefore) {
    const checked = await verifyTreeHead(gatewayKey, headBefore);
    if (!checked.ok) {
      throw new VerificationFailure(`the tree head served before the export (tree_size ${headBefore.tree_size}): ${checked.reason}`);
    }
    // Not counted among the export's heads; checked against the export's entries like them.
    await placeHead({ ...checked, label: 'the tree head served before the export', line: null, counts: false });
  }
  for (const { head, label } of savedHeads) {
    const checked = await verifyTreeHead(gatewayKey, head);
    if (!checked.ok) throw new VerificationFailure(`${label} (tree_size ${head.tree_size}): ${checked.reason}`);
    expected = Math.max(expected, checked.size);
    await placeHead({ ...checked, label, line: null, counts: false });
  }

  let entries = 0;
  let previous = null; // the last entry read: {entry, line}

  // An index out of sequence. Missing entries are named exactly (the first missing index), and so
  // is an exact copy of the previous entry; any other repeated or moved index could be the forgery
  // or the genuine entry, which only the root of a signed head covering both could tell, so the
  // positions between it and here are named as a range.
  const sequenceFailure = (index, entry, line) => {
    if (Number.isNaN(index)) {
      return new VerificationFailure(`line ${line}: the entry has no valid index where entry ${entries} was expected`, { index: entries, line });
    }
    if (index > entries) {
      return new VerificationFailure(
        `line ${line} holds entry ${index} where entry ${entries} was expected: entries ${entries}..${index - 1} are missing`,
        { index: entries, line },
      );
    }
    let same = false;
    try {
      same = previous && index === entries - 1 && canonicalText(previous.entry) === canonicalText(entry);
    } catch {
      same = false;
    }
    if (same) {
      return new VerificationFailure(`line ${line} repeats entry ${index} of line ${previous.line} where entry ${entries} was expected`, { index: entries, line });
    }
    return new VerificationFailure(
      `line ${line} holds entry ${index} where entry ${entries} was expected: an entry ${index} was inserted, ` +
        `or entries were moved; the first bad entry is in [${index}, ${entries + 1})`,
      { range: [index, entries + 1], line },
    );
  };

  for await (const [line, text] of lines(stream)) {
    if (signal && signal.aborted) throw new DOMException('verification cancelled', 'AbortError');
    if (!text.trim()) continue;
    let obj;
    try {
      obj = parseJson(text);
    } catch (err) {
      throw new VerificationFailure(
        `line ${line} is not JSON (${err instanceof JsonError ? err.message : err}); the entry after index ${entries - 1} cannot be read`,
        { index: entries, line },
      );
    }
    const type = member(obj, 'type');
    if (type === 'entry') {
      const entry = member(obj, 'entry');
      if (!(entry instanceof Map)) throw new VerificationFailure(`line ${line}: "entry" is not an object`, { index: entries, line });
      const index = num(member(entry, 'index'));
      if (index !== entries) throw sequenceFailure(index, entry, line);
      previous = { entry, line };
      let recorded = null;
      const lh = member(obj, 'leaf_hash');
      if (lh !== undefined && lh !== null) {
        recorded = fromHex32(lh);
        if (!recorded) throw new VerificationFailure(`line ${line}: leaf_hash is not 64 lowercase hex digits`, { index: entries, line });
      }
      batch.push({ line, index, entry, recorded });
      entries++;
      if (batch.length >= BATCH) {
        await flush();
        onProgress({ entries, expected: Math.max(expected, entries), heads: headsVerified });
      }
    } else if (type === 'tree_head') {
      await flush();
      const fields = headFields(obj);
      const checked = await verifyTreeHead(gatewayKey, fields);
      if (!checked.ok) {
        throw new VerificationFailure(`the tree head on line ${line} (tree_size ${fields.tree_size}): ${checked.reason}`, { line });
      }
      await placeHead({ ...checked, label: `the signed tree head on line ${line}`, line, counts: true });
      if (!newestHead || checked.size >= Number(newestHead.tree_size)) newestHead = fields;
      onProgress({ entries, expected: Math.max(expected, entries), heads: headsVerified });
    } else {
      throw new VerificationFailure(`line ${line} is neither an entry nor a tree head (type ${JSON.stringify(type ?? null)})`, { line });
    }
    if ((line & 255) === 0) await yieldSometimes();
  }
  await flush();
  onProgress({ entries, expected: Math.max(expected, entries), heads: headsVerified });

  if (pending.length) {
    const head = pending[0];
    throw new VerificationFailure(
      `${head.label} covers ${head.size} entries but the export ends after ${entries}: entries ${entries}..${head.size - 1} are missing (the tail was cut off)`,
      { index: entries, line: head.line },
    );
  }
  if (entries > 0 && headsVerified === 0) {
    throw new VerificationFailure('the export holds entries but no signed tree head: nothing in it is authenticated');
  }
  latestRoot = toHex(await tree.root());
  const covered = lastVerified ? lastVerified.size : 0;
  return {
    entries,
    heads: headsVerified,
    covered,
    uncovered: entries - covered,
    root: latestRoot,
    keyId: gatewayKey.id,
    newestHead,
  };
}
