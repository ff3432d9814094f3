// RFC 6962 / RFC 9162 Merkle hashing with WebCrypto SHA-256, inclusion-proof verification, and the
// signed tree heads of docs/formats/audit.md (Ed25519 over 71 bytes), checked with WebCrypto.
//
// WebCrypto exists only in a secure context: https, or http on localhost / 127.0.0.1.

const subtle = globalThis.crypto && globalThis.crypto.subtle;

export function requireWebCrypto() {
  if (!subtle) {
    throw new Error('WebCrypto is not available: open the console over https (or on localhost) to verify proofs.');
  }
}

export async function sha256(bytes) {
  if (!subtle) requireWebCrypto();
  return new Uint8Array(await subtle.digest('SHA-256', bytes));
}

/** leaf_hash = SHA-256(0x00 ‖ entry bytes) */
export function leafHash(entryBytes) {
  const buf = new Uint8Array(entryBytes.length + 1);
  buf.set(entryBytes, 1);
  return sha256(buf);
}

/** node_hash = SHA-256(0x01 ‖ left ‖ right) */
export function nodeHash(left, right) {
  const buf = new Uint8Array(65);
  buf[0] = 1;
  buf.set(left, 1);
  buf.set(right, 33);
  return sha256(buf);
}

export const EMPTY_ROOT_HEX = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

export function toHex(bytes) {
  let out = '';
  for (let k = 0; k < bytes.length; k++) out += HEX[bytes[k]];
  return out;
}

/** 64 lowercase hex digits -> 32 bytes, or null. */
export function fromHex32(text) {
  if (typeof text !== 'string' || !/^[0-9a-f]{64}$/.test(text)) return null;
  const out = new Uint8Array(32);
  for (let k = 0; k < 32; k++) out[k] = parseInt(text.slice(2 * k, 2 * k + 2), 16);
  return out;
}

export function fromBase64(text) {
  const t = String(text).trim();
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(t)) return null;
  const bin = atob(t);
  const out = new Uint8Array(bin.length);
  for (let k = 0; k < bin.length; k++) out[k] = bin.charCodeAt(k);
  return out;
}

export function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let k = 0; k < a.length; k++) diff |= a[k] ^ b[k];
  return diff === 0;
}

/**
 * RFC 9162 §2.1.3.2: does `path` prove that `leaf` is entry `index` of the tree of `treeSize`
 * entries whose root is `root`? Returns {ok, reason}. Sizes are JS numbers (exact below 2^53);
 * the bit operations are done with division because JS shifts are 32-bit.
 */
export async function verifyInclusion(index, treeSize, leaf, path, root) {
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(treeSize))) return { ok: false, reason: 'bad index or tree size' };
  if (index >= treeSize) return { ok: false, reason: `index ${index} is not below tree size ${treeSize}` };
  let fn = index;
  let sn = treeSize - 1;
  let r = leaf;
  for (const p of path) {
    if (sn === 0) return { ok: false, reason: 'the audit path is longer than the tree allows' };
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) return { ok: false, reason: 'the audit path is shorter than the tree requires' };
  if (!equalBytes(r, root)) return { ok: false, reason: `the path leads to root ${toHex(r)}, not to the signed root ${toHex(root)}` };
  return { ok: true, reason: '' };
}

/**
 * The Merkle tree of a growing sequence of leaves, kept as its perfect subtrees (the binary
 * decomposition of its size): O(log n) memory, the root at the current size in O(log n) hashes.
 * Leaves appended together are hashed level by level, each level's hashes requested at once,
 * so WebCrypto works on many digests in parallel instead of one await per node.
 */
export class CompactTree {
  constructor() {
    this.size = 0;
    this.stack = []; // {hash, size}: sizes are distinct powers of two, decreasing
  }

  async #push(hash, size) {
    this.stack.push({ hash, size });
    this.size += size;
    while (this.stack.length >= 2) {
      const right = this.stack[this.stack.length - 1];
      const left = this.stack[this.stack.length - 2];
      if (left.size !== right.size) break;
      this.stack.length -= 2;
      this.stack.push({ hash: await nodeHash(left.hash, right.hash), size: left.size * 2 });
    }
  }

  /** Appends leaf hashes (Uint8Array(32) each). */
  async append(leaves) {
    let p = 0;
    while (p < leaves.length) {
      const remaining = leaves.length - p;
      let block = 1;
      while (block * 2 <= remaining && this.size % (block * 2) === 0 && block < 8192) block *= 2;
      let level = leaves.slice(p, p + block);
      while (level.length > 1) {
        const next = [];
        for (let k = 0; k < level.length; k += 2) next.push(nodeHash(level[k], level[k + 1]));
        level = await Promise.all(next);
      }
      await this.#push(level[0], block);
      p += block;
    }
  }

  /** MTH of the leaves appended so far. */
  async root() {
    if (this.stack.length === 0) return sha256(new Uint8Array(0));
    let acc = this.stack[this.stack.length - 1].hash;
    for (let k = this.stack.length - 2; k >= 0; k--) acc = await nodeHash(this.stack[k].hash, acc);
    return acc;
  }
}

/** MTH of a list of leaf hashes. */
export async function rootOf(leaves) {
  const tree = new CompactTree();
  await tree.append(leaves);
  return tree.root();
}

const HEAD_PREFIX = new TextEncoder().encode('custodian-tree-head-v1\n'); // 23 bytes

/** The 71 signed bytes of a tree head: prefix ‖ tree_size u64 BE ‖ timestamp_ms u64 BE ‖ root. */
export function treeHeadSignedBytes(treeSize, timestampMs, rootHash) {
  const out = new Uint8Array(71);
  out.set(HEAD_PREFIX, 0);
  const view = new DataView(out.buffer);
  view.setBigUint64(23, BigInt(treeSize), false);
  view.setBigUint64(31, BigInt(timestampMs), false);
  out.set(rootHash, 39);
  return out;
}

/** Imports a raw 32-byte Ed25519 public key given as base64. */
export async function importGatewayKey(base64) {
  requireWebCrypto();
  const raw = fromBase64(base64);
  if (!raw || raw.length !== 32) throw new Error('the gateway key is not the base64 of 32 bytes');
  const key = await subtle.importKey('raw', raw, { name: 'Ed25519' }, false, ['verify']);
  const id = toHex((await sha256(raw)).slice(0, 8));
  return { key, id, base64: String(base64).trim() };
}

/**
 * Checks a tree head's form and Ed25519 signature. `head` holds tree_size and timestamp_ms as
 * numbers, strings or bigints, root_hash as hex and signature as base64.
 * Returns {ok, reason, size, timestamp, root}.
 */
export async function verifyTreeHead(gatewayKey, head) {
  let size;
  let timestamp;
  try {
    size = BigInt(String(head.tree_size));
    timestamp = BigInt(String(head.timestamp_ms));
  } catch {
    return { ok: false, reason: 'tree_size or timestamp_ms is not an integer' };
  }
  if (size < 0n || size >= 2n ** 64n || timestamp < 0n || timestamp >= 2n ** 64n) {
    return { ok: false, reason: 'tree_size or timestamp_ms is out of range' };
  }
  const root = fromHex32(head.root_hash);
  if (!root) return { ok: false, reason: 'root_hash is not 64 lowercase hex digits' };
  const signature = fromBase64(head.signature ?? '');
  if (!signature || signature.length !== 64) return { ok: false, reason: 'signature is not the base64 of 64 bytes' };
  const ok = await subtle.verify({ name: 'Ed25519' }, gatewayKey.key, signature, treeHeadSignedBytes(size, timestamp, root));
  return {
    ok,
    reason: ok ? '' : `its signature does not verify with the gateway key ${gatewayKey.id}`,
    size: Number(size),
    timestamp: Number(timestamp),
    root,
  };
}
