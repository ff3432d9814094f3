// Canonical JSON (docs/formats/manifest.md, "Canonical JSON"), the bytes an audit entry's leaf hash
// is computed over: member names sorted by their UTF-8 bytes, no whitespace, integers only (in
// [-2^63, 2^64)), strings UTF-8 and escaped only where JSON requires it.
//
// JSON.parse cannot serve here: it turns integers above 2^53 into approximations and silently keeps
// the last of two members with one name. parseJson below keeps every number as its source text
// (JsonNumber), objects as Maps in document order, and refuses duplicate names and lone surrogates
// (which have no UTF-8 form).

export class JsonNumber {
  constructor(raw) {
    this.raw = raw;
  }

  /** As a JS number (exact below 2^53). */
  valueOf() {
    return Number(this.raw);
  }

  toString() {
    return this.raw;
  }
}

export class JsonError extends Error {
  constructor(message) {
    super(message);
    this.name = 'JsonError';
  }
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
// Characters that end a plain run inside a string: the quote, the backslash, control characters
// (not allowed unescaped) and surrogate halves (checked for pairing).
const STRING_SPECIAL = /["\\\u0000-\u001f\ud800-\udfff]/g;

/** Parses JSON text; numbers become JsonNumber, objects Map (document order), arrays Array. */
export function parseJson(text) {
  let i = 0;
  const n = text.length;

  const fail = (what) => {
    throw new JsonError(`${what} at offset ${i}`);
  };
  const ws = () => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
  };

  const hex4 = () => {
    const h = text.slice(i, i + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(h)) fail('bad \\u escape');
    i += 4;
    return parseInt(h, 16);
  };

  const string = () => {
    i++; // opening quote
    let out = '';
    let start = i;
    for (;;) {
      STRING_SPECIAL.lastIndex = i;
      const m = STRING_SPECIAL.exec(text);
      if (!m) {
        i = n;
        fail('unterminated string');
      }
      i = m.index;
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        out += text.slice(start, i);
        i++;
        return out;
      }
      if (c < 0x20) fail('unescaped control character in a string');
      if (c >= 0xd800 && c <= 0xdbff) {
        const d = text.charCodeAt(i + 1);
        if (!(d >= 0xdc00 && d <= 0xdfff)) fail('lone surrogate in a string');
        i += 2;
        continue;
      }
      if (c >= 0xdc00 && c <= 0xdfff) fail('lone surrogate in a string');
      // backslash
      out += text.slice(start, i);
      i++;
      const e = text[i++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          const u = hex4();
          if (u >= 0xd800 && u <= 0xdbff) {
            if (text[i] !== '\\' || text[i + 1] !== 'u') fail('lone surrogate escape');
            i += 2;
            const lo = hex4();
            if (!(lo >= 0xdc00 && lo <= 0xdfff)) fail('lone surrogate escape');
            out += String.fromCharCode(u, lo);
          } else if (u >= 0xdc00 && u <= 0xdfff) {
            fail('lone surrogate escape');
          } else {
            out += String.fromCharCode(u);
          }
          break;
        }
        default:
          i--;
          fail('bad escape');
      }
      start = i;
    }
  };

  const value = (depth) => {
    if (depth > 256) fail('nesting too deep');
    ws();
    if (i >= n) fail('unexpected end of input');
    const c = text.charCodeAt(i);
    if (c === 0x7b) { // {
      i++;
      const obj = new Map();
      ws();
      if (text.charCodeAt(i) === 0x7d) {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        if (text.charCodeAt(i) !== 0x22) fail('expected a member name');
        const name = string();
        if (obj.has(name)) fail(`duplicate member name ${JSON.stringify(name)}`);
        ws();
        if (text.charCodeAt(i) !== 0x3a) fail("expected ':'");
        i++;
        obj.set(name, value(depth + 1));
        ws();
        const d = text.charCodeAt(i);
        if (d === 0x2c) { i++; continue; }
        if (d === 0x7d) { i++; return obj; }
        fail("expected ',' or '}'");
      }
    }
    if (c === 0x5b) { // [
      i++;
      const arr = [];
      ws();
      if (text.charCodeAt(i) === 0x5d) {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value(depth + 1));
        ws();
        const d = text.charCodeAt(i);
        if (d === 0x2c) { i++; continue; }
        if (d === 0x5d) { i++; return arr; }
        fail("expected ',' or ']'");
      }
    }
    if (c === 0x22) return string();
    if (text.startsWith('true', i)) { i += 4; return true; }
    if (text.startsWith('false', i)) { i += 5; return false; }
    if (text.startsWith('null', i)) { i += 4; return null; }
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    if (m) {
      i += m[0].length;
      return new JsonNumber(m[0]);
    }
    return fail('unexpected character');
  };

  const result = value(0);
  ws();
  if (i !== n) fail('text after the JSON value');
  return result;
}

const INTEGER = /^-?(?:0|[1-9][0-9]*)$/;
const INT_MIN = -(2n ** 63n);
const INT_LIMIT = 2n ** 64n;

function canonicalInteger(raw) {
  if (!INTEGER.test(raw)) throw new JsonError(`${raw} is not an integer (canonical JSON has no fractions or exponents)`);
  if (raw === '-0') return '0';
  if (raw.length > 15) {
    const v = BigInt(raw);
    if (v < INT_MIN || v >= INT_LIMIT) throw new JsonError(`${raw} is outside [-2^63, 2^64)`);
  }
  return raw;
}

const MUST_ESCAPE = /["\\\u0000-\u001f]/;
const MUST_ESCAPE_ALL = /["\\\u0000-\u001f]/g;
const SHORT_ESCAPES = { '"': '\\"', '\\': '\\\\', '\b': '\\b', '\t': '\\t', '\n': '\\n', '\f': '\\f', '\r': '\\r' };

function canonicalString(str) {
  if (!MUST_ESCAPE.test(str)) return `"${str}"`;
  return `"${str.replace(MUST_ESCAPE_ALL, (ch) =>
    SHORT_ESCAPES[ch] ?? `\\u00${ch.charCodeAt(0).toString(16).padStart(2, '0')}`)}"`;
}

/**
 * Compares two strings in the order of their UTF-8 bytes (= code point order). JS compares UTF-16
 * code units, which puts U+10000 and above (surrogate pairs, D800–DFFF) before U+E000–U+FFFF.
 */
export function compareUtf8(a, b) {
  const n = Math.min(a.length, b.length);
  for (let k = 0; k < n; k++) {
    const x = a.charCodeAt(k);
    const y = b.charCodeAt(k);
    if (x !== y) {
      const xs = x >= 0xd800 && x <= 0xdfff;
      const ys = y >= 0xd800 && y <= 0xdfff;
      if (xs !== ys) return xs ? 1 : -1;
      return x - y;
    }
  }
  return a.length - b.length;
}

function encode(v, out) {
  if (v === null) out.push('null');
  else if (v === true) out.push('true');
  else if (v === false) out.push('false');
  else if (v instanceof JsonNumber) out.push(canonicalInteger(v.raw));
  else if (typeof v === 'string') out.push(canonicalString(v));
  else if (typeof v === 'number' || typeof v === 'bigint') {
    // Values built in JS rather than parsed (tests, callers).
    if (typeof v === 'number' && !Number.isSafeInteger(v)) throw new JsonError(`${v} is not an exact integer`);
    out.push(canonicalInteger(String(v)));
  } else if (Array.isArray(v)) {
    out.push('[');
    v.forEach((item, k) => {
      if (k) out.push(',');
      encode(item, out);
    });
    out.push(']');
  } else if (v instanceof Map || typeof v === 'object') {
    const entries = v instanceof Map ? [...v.entries()] : Object.entries(v);
    entries.sort((p, q) => compareUtf8(p[0], q[0]));
    out.push('{');
    entries.forEach(([name, item], k) => {
      if (k && name === entries[k - 1][0]) throw new JsonError(`duplicate member name ${JSON.stringify(name)}`);
      if (k) out.push(',');
      out.push(canonicalString(name), ':');
      encode(item, out);
    });
    out.push('}');
  } else {
    throw new JsonError(`cannot encode a ${typeof v}`);
  }
}

/** The canonical JSON text of a parsed value (a JS string; see canonicalBytes for the bytes). */
export function canonicalText(v) {
  const out = [];
  encode(v, out);
  return out.join('');
}

const utf8 = new TextEncoder();

/** The canonical JSON bytes (UTF-8) of a parsed value. */
export function canonicalBytes(v) {
  return utf8.encode(canonicalText(v));
}

/** Indented JSON for people to read; numbers exactly as received, members in document order. */
export function prettyJson(v, indent = '') {
  const next = `${indent}  `;
  if (v instanceof Map) {
    if (v.size === 0) return '{}';
    const lines = [...v.entries()].map(([k, item]) => `${next}${JSON.stringify(k)}: ${prettyJson(item, next)}`);
    return `{\n${lines.join(',\n')}\n${indent}}`;
  }
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    return `[\n${v.map((item) => `${next}${prettyJson(item, next)}`).join(',\n')}\n${indent}]`;
  }
  if (v instanceof JsonNumber) return v.raw;
  if (v !== null && typeof v === 'object') {
    const keys = Object.keys(v);
    if (keys.length === 0) return '{}';
    return `{\n${keys.map((k) => `${next}${JSON.stringify(k)}: ${prettyJson(v[k], next)}`).join(',\n')}\n${indent}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/** Member `name` of a parsed object (Map), or undefined. */
export function member(obj, name) {
  return obj instanceof Map ? obj.get(name) : undefined;
}

/** A parsed value as plain JS (Maps to objects, JsonNumbers to numbers): for display only. */
export function toPlain(v) {
  if (v instanceof JsonNumber) return Number(v.raw);
  if (v instanceof Map) {
    const o = {};
    for (const [k, item] of v) {
      // defineProperty: a member named "__proto__" stays a member
      Object.defineProperty(o, k, { value: toPlain(item), enumerable: true, writable: true, configurable: true });
    }
    return o;
  }
  if (Array.isArray(v)) return v.map(toPlain);
  return v;
}
