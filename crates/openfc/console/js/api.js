// The console's only way to openfc: the FC API (the same routes the SDKs use), authenticated by the session
// cookie the browser sends by itself, plus the CSRF value on every change. The AccessKey secret is sent once,
// at sign-in, and never kept.

const VERSION = '/2021-04-06';
let csrf = '';
let onSignedOut = () => {};

/** An FC error as the API answered it: code, message, HTTP status and request id. */
export class FcError extends Error {
  constructor(status, code, message, requestId) {
    super(message);
    this.status = status;
    this.code = code;
    this.requestId = requestId;
  }
  describe() {
    const rid = this.requestId ? ` (request id ${this.requestId})` : '';
    return `${this.code}: ${this.message}${rid}`;
  }
}

export function whenSignedOut(fn) { onSignedOut = fn; }

async function fail(resp) {
  let body = {};
  try { body = await resp.json(); } catch { /* not JSON */ }
  const rid = resp.headers.get('x-fc-request-id') || body.RequestId || '';
  const code = body.ErrorCode || body.Code || `HTTP ${resp.status}`;
  const message = body.ErrorMessage || body.Message || resp.statusText || 'request failed';
  return new FcError(resp.status, code, message, rid);
}

async function send(method, url, { body, headers = {} } = {}) {
  const h = { ...headers };
  if (method !== 'GET' && method !== 'HEAD') h['X-Openfc-Csrf'] = csrf;
  let payload = body;
  if (body !== undefined && !(body instanceof Uint8Array) && typeof body !== 'string') {
    payload = JSON.stringify(body);
    h['Content-Type'] = 'application/json';
  }
  const resp = await fetch(url, { method, headers: h, body: payload, credentials: 'same-origin', cache: 'no-store' });
  if (!resp.ok && resp.status !== 202) {
    const err = await fail(resp);
    // A session that ended (expired, key disabled) sends the user back to sign-in.
    if (resp.status === 403 && /console session|not signed in|access key .* (is disabled|no longer exists)/.test(err.message)) {
      csrf = '';
      onSignedOut(err);
    }
    throw err;
  }
  return resp;
}

/** An FC API call; `path` is under the API version, e.g. `/services`. JSON answers are parsed. */
export async function fc(method, path, opts = {}) {
  const resp = await send(method, VERSION + path, opts);
  if (opts.raw) return resp;
  const text = await resp.text();
  return text ? JSON.parse(text) : {};
}

export function q(params) {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') s.set(k, String(v));
  const text = s.toString();
  return text ? `?${text}` : '';
}

export const enc = encodeURIComponent;

export async function currentSession() {
  const resp = await fetch('/console/api/session', { credentials: 'same-origin', cache: 'no-store' });
  if (!resp.ok) return null;
  const s = await resp.json();
  csrf = s.csrf;
  return s;
}

export async function signIn(accessKeyId, accessKeySecret) {
  const resp = await fetch('/console/api/session', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ accessKeyId, accessKeySecret }),
    credentials: 'same-origin',
  });
  if (!resp.ok) throw await fail(resp);
  const s = await resp.json();
  csrf = s.csrf;
  return s;
}

export async function signOut() {
  try { await send('DELETE', '/console/api/session'); } finally { csrf = ''; }
}

export async function charts(params = {}) {
  const resp = await send('GET', `/console/api/charts${q(params)}`);
  return resp.json();
}

/** Base64 of bytes, in slices (a spread of a large array overflows the call stack). */
export function base64(bytes) {
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

export function fromBase64(text) {
  try {
    const bin = atob(text);
    const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    return new TextDecoder().decode(bytes);
  } catch { return ''; }
}
