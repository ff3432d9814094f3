// The gateway's HTTP API, called from the console's own origin.
//
// The API token lives only in the variable `token` of this module: it is sent in the
// Authorization header of same-origin requests and nowhere else — never in a URL, never in
// localStorage, sessionStorage, IndexedDB or a cookie, never in the DOM after sign-in. Reloading
// or closing the tab, or "Log out", forgets it.

let token = null;
let onUnauthenticated = null;

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
  }

  /** "403 permission_denied: ..." */
  describe() {
    return `${this.status ? `${this.status} ` : ''}${this.code ? `${this.code}: ` : ''}${this.message}`;
  }
}

/** Accepts a token typed by a person (surrounding whitespace ignored); refuses what cannot be a header value. */
export function setToken(value) {
  const t = String(value ?? '').trim();
  if (!t) throw new ApiError(0, 'invalid_token', 'Enter an API token.');
  if (!/^[\x21-\x7e]+$/.test(t)) {
    throw new ApiError(0, 'invalid_token', 'An API token is printable ASCII without spaces.');
  }
  token = t;
}

export function forgetToken() {
  token = null;
}

export function hasToken() {
  return token !== null;
}

/** Called (once per failure) when the gateway answers 401 to a request that carried the token. */
export function setUnauthenticatedHandler(fn) {
  onUnauthenticated = fn;
}

function url(path, query) {
  if (!path.startsWith('/') || path.startsWith('//')) throw new Error(`api: not a same-origin path: ${path}`);
  const u = new URL(path, window.location.origin);
  if (query) {
    for (const [k, v] of Object.entries(query)) {
      if (v === undefined || v === null || v === '') continue;
      u.searchParams.set(k, String(v));
    }
  }
  return u;
}

async function errorFrom(res) {
  let text = '';
  try {
    text = await res.text();
  } catch {
    // the body could not be read; the status says enough
  }
  try {
    const body = JSON.parse(text);
    if (body && body.error && typeof body.error.message === 'string') {
      return new ApiError(res.status, body.error.code ?? '', body.error.message, body.error.details);
    }
  } catch {
    // not JSON: fall through
  }
  return new ApiError(res.status, '', text.trim().slice(0, 300) || res.statusText || 'request failed');
}

/**
 * One request. `auth` false sends no token (public routes). Returns the Response when ok;
 * throws ApiError otherwise.
 */
export async function request(method, path, { query, body, signal, auth = true, accept = 'application/json' } = {}) {
  const headers = { Accept: accept };
  if (auth) {
    if (token === null) throw new ApiError(0, 'unauthenticated', 'Not signed in.');
    headers.Authorization = `Bearer ${token}`;
  }
  const init = {
    method,
    headers,
    signal,
    credentials: 'omit',
    cache: 'no-store',
    referrerPolicy: 'no-referrer',
    redirect: 'error',
  };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(url(path, query), init);
  } catch (err) {
    if (err && err.name === 'AbortError') throw err;
    throw new ApiError(0, 'network', `The gateway could not be reached (${err && err.message ? err.message : err}).`);
  }
  if (!res.ok) {
    const err = await errorFrom(res);
    if (res.status === 401 && auth && onUnauthenticated) onUnauthenticated(err);
    throw err;
  }
  return res;
}

/** GET a JSON document. */
export async function getJson(path, query, opts = {}) {
  const res = await request('GET', path, { ...opts, query });
  return res.json();
}

/** GET the body as text (for documents whose integers must be kept exactly, see canonical.js). */
export async function getText(path, query, opts = {}) {
  const res = await request('GET', path, { ...opts, query });
  return res.text();
}

export async function postJson(path, body, opts = {}) {
  const res = await request('POST', path, { ...opts, body });
  return res.json();
}

/** A path with each segment percent-encoded: path('v1', 'datasets', name) -> "/v1/datasets/<name>". */
export function path(...segments) {
  return `/${segments.map((seg) => encodeURIComponent(String(seg))).join('/')}`;
}
