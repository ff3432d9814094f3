// A synthetic audit export of N entries with signed tree heads, built in node the way the gateway
// builds one (docs/formats/audit.md): canonical entry bytes, leaf hashes, RFC 6962 roots, heads
// signed with a fresh Ed25519 key every `every` entries and at the end. Used to time "Verify the
// log" on a log far larger than the test's gateway holds, without writing it to a database.

import { createHash, generateKeyPairSync, sign } from 'node:crypto';

const sha = (...parts) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
const leafHash = (bytes) => sha(Buffer.from([0]), bytes);
const nodeHash = (l, r) => sha(Buffer.from([1]), l, r);

class Tree {
  constructor() {
    this.stack = []; // [hash, size]
  }

  push(hash) {
    let h = hash;
    let size = 1;
    while (this.stack.length && this.stack[this.stack.length - 1][1] === size) {
      const [left] = this.stack.pop();
      h = nodeHash(left, h);
      size *= 2;
    }
    this.stack.push([h, size]);
  }

  root() {
    if (!this.stack.length) return sha(Buffer.alloc(0));
    let acc = this.stack[this.stack.length - 1][0];
    for (let k = this.stack.length - 2; k >= 0; k--) acc = nodeHash(this.stack[k][0], acc);
    return acc;
  }
}

const ACTIONS = ['catalog.get', 'extract.requested', 'extract.completed', 'audit.query', 'policy.get'];

/** Returns {ndjson (Buffer), publicKey (base64), lastHead (object), entries}. */
export function syntheticExport(n, every = 1000) {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const rawPublic = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const tree = new Tree();
  const lines = [];
  let lastHead = null;
  const head = (size, time) => {
    const root = tree.root();
    const signed = Buffer.alloc(71);
    signed.write('custodian-tree-head-v1\n', 0, 'ascii');
    signed.writeBigUInt64BE(BigInt(size), 23);
    signed.writeBigUInt64BE(BigInt(time), 31);
    root.copy(signed, 39);
    lastHead = { root_hash: root.toString('hex'), signature: sign(null, signed, privateKey).toString('base64'), timestamp_ms: time, tree_size: size };
    lines.push(JSON.stringify({ ...lastHead, type: 'tree_head' }));
  };
  const t0 = 1795000000000;
  for (let i = 0; i < n; i++) {
    const action = ACTIONS[i % ACTIONS.length];
    // members in canonical (sorted) order; text with escapes and characters beyond ASCII
    const entry = `{"action":"${action}","actor":"partner-${i % 97}","client_address":"192.0.2.${i % 250}",` +
      `"decision":"${i % 13 === 0 ? 'denied' : 'allowed'}","details":{"rows_released":${i * 7},"status":200},"index":${i},` +
      `"purpose":${i % 5 === 1 ? '"étude \\"grippe\\" € 😀 \\\\ \\u0001"' : 'null'},"reason":null,"request_id":"req-${i}",` +
      `"role":"partner","target":{"dataset":"hospital_visits","policy":"research","policy_version":2,"source":null},"time_ms":${t0 + i * 10}}`;
    const bytes = Buffer.from(entry, 'utf8');
    const lh = leafHash(bytes);
    tree.push(lh);
    lines.push(`{"entry":${entry},"leaf_hash":"${lh.toString('hex')}","type":"entry"}`);
    if ((i + 1) % every === 0) head(i + 1, t0 + i * 10 + 5);
  }
  if (n % every !== 0) head(n, t0 + n * 10 + 5);
  return { ndjson: Buffer.from(`${lines.join('\n')}\n`, 'utf8'), publicKey: rawPublic.toString('base64'), lastHead, entries: n };
}
