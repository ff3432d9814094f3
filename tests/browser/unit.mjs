// Unit checks of the console's verification code (web/console/canonical.js, merkle.js, verify.js),
// run by node with its WebCrypto before the browser starts: known answers from the docs and the
// RFCs, the C++ suite's seed exports, and a reference MTH for many sizes.
//
//   node tests/browser/unit.mjs

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const consoleDir = path.join(root, 'web', 'console');
const { parseJson, canonicalText, canonicalBytes, compareUtf8, JsonError } = await import(path.join(consoleDir, 'canonical.js'));
const { sha256, leafHash, nodeHash, toHex, fromHex32, CompactTree, rootOf, verifyInclusion, importGatewayKey, verifyTreeHead } =
  await import(path.join(consoleDir, 'merkle.js'));
const { verifyExport, VerificationFailure } = await import(path.join(consoleDir, 'verify.js'));
const { lineDiff } = await import(path.join(consoleDir, 'diff.js'));

let failures = 0;
let checks = 0;
function check(cond, what) {
  checks++;
  if (!cond) {
    failures++;
    console.error(`FAIL: ${what}`);
  }
}
function throws(fn, what) {
  try {
    fn();
  } catch (err) {
    check(err instanceof JsonError, `${what} (threw ${err && err.name})`);
    return;
  }
  check(false, `${what} (did not throw)`);
}

const enc = new TextEncoder();

// ---- canonical JSON -------------------------------------------------------------------------------

{
  // docs/formats/audit.md, "Entry bytes": entry 7 and its leaf hash
  const entry = '{"action":"extract.completed","actor":"partner-a","client_address":"192.0.2.7","decision":"completed",' +
    '"details":{"ciphertext_sha256":"00ff","k":10,"rows_released":99000,"t":"0.150"},"index":7,' +
    '"purpose":"influenza \\"study\\"","reason":null,"request_id":"req-7","role":"partner",' +
    '"target":{"dataset":"hospital_visits","policy":"research","policy_version":3,"source":null},' +
    '"time_ms":1795000000000}';
  check(canonicalText(parseJson(entry)) === entry, 'the docs\' entry 7 is canonical as it stands');
  check(toHex(await leafHash(canonicalBytes(parseJson(entry)))) === 'db916241a262f0784076adb57e40411be8c098ebe9c30960e91d38a516fa21a9',
    'the docs\' entry 7 has leaf hash db916241…');
  // the same entry with its members in reverse order and indented canonicalises to the same bytes
  const reverse = (v) => (v && typeof v === 'object' && !Array.isArray(v)
    ? Object.fromEntries(Object.keys(v).reverse().map((k) => [k, reverse(v[k])])) : v);
  const pretty = JSON.stringify(reverse(JSON.parse(entry)), null, 2);
  check(pretty !== entry && canonicalText(parseJson(pretty)) === entry, 'reordered, indented input canonicalises to the same bytes');
}
check(canonicalText(parseJson('{"b":1,"a":[true,false,null],"c":{"z":"","y":-5}}')) === '{"a":[true,false,null],"b":1,"c":{"y":-5,"z":""}}',
  'members sorted, whitespace dropped');
check(canonicalText(parseJson('"\\u0001\\u001f\\b\\t\\n\\f\\r\\"\\\\\\/\\u007f\\u00e9\\u20ac\\ud83d\\ude00"')) ===
  '"\\u0001\\u001f\\b\\t\\n\\f\\r\\"\\\\/\u007f\u00e9\u20ac\u{1F600}"', 'minimal escaping: short forms, \\u00XX lowercase, the rest literal');
check(canonicalText(parseJson('"\u00e9\u20ac\u{1F600}"')) === '"\u00e9\u20ac\u{1F600}"', 'non-ASCII stays literal');
check(toHex(canonicalBytes(parseJson('"\u00e9"'))) === '22c3a922', 'UTF-8 bytes');
check(canonicalText(parseJson('18446744073709551615')) === '18446744073709551615', '2^64-1 kept exactly');
check(canonicalText(parseJson('-9223372036854775808')) === '-9223372036854775808', '-2^63 kept exactly');
check(canonicalText(parseJson('-0')) === '0', '-0 is 0');
throws(() => canonicalText(parseJson('18446744073709551616')), '2^64 is out of range');
throws(() => canonicalText(parseJson('1.5')), 'fractions are refused');
throws(() => canonicalText(parseJson('1e3')), 'exponents are refused');
throws(() => parseJson('{"a":1,"a":2}'), 'duplicate member names are refused');
throws(() => parseJson('"\\ud800"'), 'a lone surrogate escape is refused');
throws(() => parseJson('"\ud800x"'), 'a lone surrogate is refused');
throws(() => parseJson('"a\u0001"'), 'an unescaped control character is refused');
throws(() => parseJson('[1,]'), 'a trailing comma is refused');
throws(() => parseJson('{"a":1} x'), 'text after the value is refused');
// U+FFFF (UTF-8 EF BF BF) sorts before U+10000 (F0 90 80 80), although its UTF-16 unit is larger
check(compareUtf8('\uffff', '\u{10000}') < 0, 'UTF-8 byte order, not UTF-16 order');
check(canonicalText(parseJson('{"\u{10000}":1,"\uffff":2,"a":3}')) === '{"a":3,"\uffff":2,"\u{10000}":1}', 'members in UTF-8 byte order');
check(canonicalText(parseJson('{"__proto__":1}')) === '{"__proto__":1}', 'a member named __proto__ is an ordinary member');

// ---- Merkle tree ----------------------------------------------------------------------------------------

const rfcLeaves = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f']
  .map((hex) => Uint8Array.from(hex.match(/../g) || [], (b) => parseInt(b, 16)));
const rfcRoots = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];
const rfcLeafHashes = await Promise.all(rfcLeaves.map((l) => leafHash(l)));
{
  const tree = new CompactTree();
  check(toHex(await tree.root()) === rfcRoots[0], 'RFC 6962 root of size 0');
  for (let n = 1; n <= 8; n++) {
    await tree.append([rfcLeafHashes[n - 1]]);
    check(toHex(await tree.root()) === rfcRoots[n], `RFC 6962 root of size ${n}, appended one by one`);
    check(toHex(await rootOf(rfcLeafHashes.slice(0, n))) === rfcRoots[n], `RFC 6962 root of size ${n}, appended at once`);
  }
  const proofs = [
    [0, 8, ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4']],
    [5, 8, ['bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']],
    [2, 3, ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125']],
    [0, 1, []],
  ];
  for (const [index, size, pathHex] of proofs) {
    const p = pathHex.map(fromHex32);
    const root = fromHex32(rfcRoots[size]);
    check((await verifyInclusion(index, size, rfcLeafHashes[index], p, root)).ok, `RFC 6962 inclusion proof of ${index} in ${size}`);
    check(!(await verifyInclusion(index, size, rfcLeafHashes[(index + 1) % 8], p, root)).ok, `…and not for another leaf (${index}, ${size})`);
    if (size > 1) check(!(await verifyInclusion((index + 1) % size, size, rfcLeafHashes[index], p, root)).ok, `…nor at another index (${index}, ${size})`);
  }
}
{
  // reference MTH (RFC 6962 §2.1, recursive) against the compact tree, with batches of odd sizes
  const leaves = await Promise.all(Array.from({ length: 300 }, (_, k) => leafHash(enc.encode(String(k * 7919)))));
  const reference = async (a, b) => {
    const n = b - a;
    if (n === 0) return sha256(new Uint8Array(0));
    if (n === 1) return leaves[a];
    let k = 1;
    while (k * 2 < n) k *= 2;
    return nodeHash(await reference(a, a + k), await reference(a + k, b));
  };
  const tree = new CompactTree();
  let n = 0;
  const batches = [1, 2, 5, 8, 13, 64, 3, 100, 4, 100];
  for (const b of batches) {
    const take = Math.min(b, 300 - n);
    await tree.append(leaves.slice(n, n + take));
    n += take;
    check(toHex(await tree.root()) === toHex(await reference(0, n)), `compact tree root at ${n} equals the reference MTH`);
  }
  for (const size of [1, 2, 3, 7, 16, 17, 255, 256, 257, 300]) {
    check(toHex(await rootOf(leaves.slice(0, size))) === toHex(await reference(0, size)), `root of ${size} leaves at once`);
  }
}

// ---- export verification on the C++ suite's seed exports ------------------------------------------------

const corpus = path.join(root, 'tests', 'fuzz', 'corpus', 'audit_export');
const rfc8032Key = await importGatewayKey('11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=');
const streamOf = (file) => new Blob([fs.readFileSync(path.join(corpus, file))]).stream();
async function verifyFile(file) {
  try {
    return { ok: true, summary: await verifyExport({ stream: streamOf(file), gatewayKey: rfc8032Key }) };
  } catch (err) {
    if (!(err instanceof VerificationFailure)) throw err;
    return { ok: false, err };
  }
}
{
  const valid = await verifyFile('valid.ndjson');
  check(valid.ok && valid.summary.entries === 10 && valid.summary.heads >= 1, `valid.ndjson verifies (${valid.ok ? JSON.stringify(valid.summary) : valid.err.message})`);
  const empty = await verifyFile('empty.ndjson');
  check(empty.ok && empty.summary.entries === 0, 'empty.ndjson verifies (nothing to check)');
  const modified = await verifyFile('modified_entry.ndjson');
  check(!modified.ok && modified.err.index === 2, `modified_entry.ndjson (entry 2's request_id edited) fails at entry 2 (${modified.ok ? 'verified' : modified.err.message})`);
  // truncated_tail.ndjson lost entry 9 and the head of size 10: alone it verifies (as with
  // custodian audit verify); the head of size 10 obtained separately reveals the cut.
  const truncated = await verifyFile('truncated_tail.ndjson');
  check(truncated.ok && truncated.summary.entries === 9, `truncated_tail.ndjson alone verifies its 9 entries (${truncated.ok ? 'verified' : truncated.err.message})`);
  const head10 = JSON.parse(fs.readFileSync(path.join(corpus, 'valid.ndjson'), 'utf8').trim().split('\n').pop());
  let cut = null;
  try {
    await verifyExport({ stream: streamOf('truncated_tail.ndjson'), gatewayKey: rfc8032Key, headBefore: head10 });
  } catch (err) {
    cut = err;
  }
  check(cut instanceof VerificationFailure && cut.index === 9, `truncated_tail.ndjson with the head of size 10 fails at entry 9 (${cut && cut.message})`);
  const forged = await verifyFile('forged_before_genuine.ndjson');
  check(!forged.ok && forged.err.range && forged.err.range[0] === 5 && forged.err.range[1] === 7,
    `forged_before_genuine.ndjson fails in [5, 7) (${forged.ok ? 'verified' : forged.err.message})`);
  const garbage = await verifyFile('garbage.ndjson');
  check(!garbage.ok, `garbage.ndjson fails (${garbage.ok ? 'verified' : garbage.err.message})`);
  const otherKey = await importGatewayKey(Buffer.alloc(32, 7).toString('base64'));
  let wrongKey = null;
  try {
    await verifyExport({ stream: streamOf('valid.ndjson'), gatewayKey: otherKey });
  } catch (err) {
    wrongKey = err;
  }
  check(wrongKey instanceof VerificationFailure && /signature/.test(wrongKey.message), 'valid.ndjson does not verify with another key');
  // a head checked directly
  const headLine = fs.readFileSync(path.join(corpus, 'valid.ndjson'), 'utf8').split('\n').find((l) => l.includes('"tree_head"'));
  const head = JSON.parse(headLine);
  check((await verifyTreeHead(rfc8032Key, head)).ok, 'a seed tree head\'s signature verifies');
  check(!(await verifyTreeHead(rfc8032Key, { ...head, tree_size: head.tree_size + 1 })).ok, 'a tree head with another size does not');
}

// ---- line diff ---------------------------------------------------------------------------------------------

{
  const { ops } = lineDiff('a\nb\nc\nd\ne', 'a\nc\nd\nX\ne');
  const script = ops.map((o) => `${o.op}${o.text}`).join(',');
  check(script === ' a,-b, c, d,+X, e', `line diff (${script})`);
  check(lineDiff('same\ntext', 'same\ntext').ops.every((o) => o.op === ' '), 'identical texts have no changes');
}

console.log(`unit checks: ${checks - failures} of ${checks} passed`);
process.exit(failures ? 1 : 0);
