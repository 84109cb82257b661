// The console's only door to the service: every call carries the signed-in key; a 401 signs out.

const KEY_STORE = "forewarn.key";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function storedKey() {
  return sessionStorage.getItem(KEY_STORE);
}

export function storeKey(key) {
  sessionStorage.setItem(KEY_STORE, key);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_STORE);
}

let onUnauthorised = () => {};

/** What to do when the service refuses the key (sign-in again). */
export function whenUnauthorised(callback) {
  onUnauthorised = callback;
}

function reason(body, status) {
  if (typeof body?.error === "string") return body.error; // the service's own sentence
  const detail = body?.detail ?? body?.message;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) return detail.map((d) => d.msg ?? JSON.stringify(d)).join("; ");
  if (detail && typeof detail === "object") return detail.message ?? JSON.stringify(detail);
  return `HTTP ${status}`;
}

/** Call the API with `key` (default: the stored one); the decoded JSON body, or ApiError. */
export async function call(path, { method = "GET", body, params, key } = {}) {
  const apiKey = key ?? storedKey();
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(params ?? {})) {
    if (value === undefined || value === null || value === "") continue;
    if (Array.isArray(value)) value.forEach((v) => url.searchParams.append(name, v));
    else url.searchParams.set(name, value);
  }
  const headers = { Accept: "application/json" };
  if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    throw new ApiError(0, String(err));
  }
  const text = await response.text();
  let doc = null;
  try {
    doc = text ? JSON.parse(text) : null;
  } catch {
    doc = { detail: text.slice(0, 200) };
  }
  if (response.status === 401) {
    if (key === undefined) onUnauthorised();
    throw new ApiError(401, reason(doc, 401));
  }
  if (!response.ok) throw new ApiError(response.status, reason(doc, response.status));
  return doc;
}
