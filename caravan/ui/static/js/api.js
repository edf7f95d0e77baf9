// The one way the UI talks to Caravan: same origin, the tab's bearer token, and the
// API's own error sentence on failure (never a blank page).

const TOKEN_KEY = "caravan.token";

export class ApiError extends Error {
  constructor(status, message, details = [], retryAfter = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.details = Array.isArray(details) ? details : [];
    // Seconds, from a 503's Retry-After: the live helper waits that long before retrying.
    this.retryAfter = retryAfter;
  }
}

// The token lives in sessionStorage only: it goes away with the tab.
export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY) || "",
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value.trim()),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

const unauthorizedListeners = new Set();
export function onUnauthorized(listener) {
  unauthorizedListeners.add(listener);
}

function headers(extra = {}) {
  const result = { ...extra };
  const bearer = token.get();
  if (bearer) result.Authorization = `Bearer ${bearer}`;
  return result;
}

async function errorOf(response) {
  const text = await response.text();
  const after = Number(response.headers.get("Retry-After")) || null;
  try {
    const body = JSON.parse(text);
    if (body && typeof body.error === "string") {
      return new ApiError(response.status, body.error, body.details, after);
    }
  } catch {
    // not JSON: fall through to the status line
  }
  const sentence = text.trim() || `${response.status} ${response.statusText}`;
  return new ApiError(response.status, sentence, [], after);
}

// fetch with the token; throws ApiError for any non-2xx answer.
export async function request(method, path, { body, signal, headers: extra, raw } = {}) {
  const init = { method, signal, headers: headers(extra) };
  if (body !== undefined) {
    // Every body the UI sends is JSON, and says so: the server refuses other types.
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, `Caravan is unreachable (${error.message})`);
  }
  if (!response.ok) {
    const error = await errorOf(response);
    if (response.status === 401) unauthorizedListeners.forEach((l) => l(error));
    throw error;
  }
  if (raw) return response;
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : response.text();
}

export const get = (path, options) => request("GET", path, options);
export const post = (path, body, options = {}) => request("POST", path, { ...options, body });
export const del = (path, options) => request("DELETE", path, options);

export const enc = encodeURIComponent;
