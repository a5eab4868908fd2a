// Calls to the public API with the signed-in key (`Authorization: Bearer`).

const STORAGE = 'sogni-console-key';

export const session = {
  get key() { return sessionStorage.getItem(STORAGE); },
  set key(value) {
    if (value) sessionStorage.setItem(STORAGE, value);
    else sessionStorage.removeItem(STORAGE);
  },
  account: null,
  get isAdmin() { return this.account?.role === 'admin'; },
};

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
  }
}

/** Listeners told when the key is refused (401), so the app can sign out. */
export const onUnauthorized = new EventTarget();

/** The API's error message, whichever of its shapes the body has. */
export async function errorOf(response) {
  let body = null;
  let message = `${response.status} ${response.statusText || 'error'}`;
  try {
    const text = await response.text();
    body = text ? JSON.parse(text) : null;
  } catch { /* not JSON: keep the status line */ }
  const found = body?.error?.message ?? body?.message ?? body?.error_message
    ?? (typeof body?.error === 'string' ? body.error : null)
    ?? (typeof body?.detail === 'string' ? body.detail : null);
  if (found) message = `${found} (HTTP ${response.status})`;
  if (response.status === 401) onUnauthorized.dispatchEvent(new Event('unauthorized'));
  return new ApiError(response.status, message, body);
}

export function authHeaders(extra = {}, key = session.key) {
  return { Authorization: `Bearer ${key}`, ...extra };
}

/** JSON in, JSON out; a non-2xx answer throws an ApiError with the server's message. */
export async function api(path, { method = 'GET', body, headers = {}, key, signal } = {}) {
  const init = { method, headers: authHeaders(headers, key ?? session.key), signal };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (!response.ok) throw await errorOf(response);
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

/** A query string from the non-empty values. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

export const enc = encodeURIComponent;
