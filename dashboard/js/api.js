/**
 * The admin API as the dashboard calls it: JSON in and out, the token in `Authorization`, errors
 * as {@link ApiError} with the API's message and field issues. The token lives in
 * `sessionStorage` (this tab, until it closes or the user logs out), never in a URL.
 *
 * @module
 */

const TOKEN_KEY = "perch.token";

/** An error reply of the API: its status, message and field-level issues. */
export class ApiError extends Error {
  constructor(status, message, issues = []) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.issues = issues;
  }
}

/** The token this tab logged in with, if any. */
export function storedToken() {
  return sessionStorage.getItem(TOKEN_KEY) ?? undefined;
}

export function storeToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

let onUnauthorized = () => {};

/** Runs `handler(error)` whenever the API answers 401 (the token expired or was removed). */
export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

/**
 * Calls `/api/v1{path}` (relative to the dashboard, so a proxy prefix is kept). `query` entries
 * that are undefined or empty are left out. Resolves with the JSON reply (undefined for 204).
 */
export async function api(path, { method = "GET", query, body } = {}) {
  const url = new URL(`../api/v1${path}`, location.href);
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== "") url.searchParams.set(name, String(value));
  }
  const headers = { accept: "application/json" };
  const token = storedToken();
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return undefined;
  const reply = await response.json().catch(() => undefined);
  if (response.ok) return reply;
  const error = new ApiError(
    response.status,
    reply?.message ?? `${response.status} ${response.statusText}`,
    reply?.issues,
  );
  if (response.status === 401) onUnauthorized(error);
  throw error;
}

/** A value as one path segment: `a/#` is `a%2F%23`. */
export function segment(value) {
  return encodeURIComponent(value);
}

/**
 * A guard for requests that replace one another (a new search, another row's details): each call
 * starts a request and returns a check that stays true until the next call, so a slow earlier
 * reply is never shown over a newer one.
 */
export function newestOnly() {
  let newest = 0;
  return () => {
    const ticket = ++newest;
    return () => ticket === newest;
  };
}
