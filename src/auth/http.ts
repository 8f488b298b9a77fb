/**
 * HTTP authentication: each CONNECT is POSTed as JSON to a configured URL, and the response says
 * allow or deny. Results are cached (bounded, with a time to live); a failing service (timeout,
 * network error, unexpected status) is handled by the configured fail policy.
 *
 * Request body: `{ clientId, username, password, remoteAddress, protocolVersion }` (`password` as
 * UTF-8 text, `null` when absent). Response: status 200/204 allows and 401/403 denies; a JSON
 * body `{ "result": "allow" | "deny" | "pass", "username"?: string, "acl"?: [...rules] }` refines
 * a 200 (`pass` hands the client to the next provider).
 *
 * @module
 */

import { ReasonCode } from "../codec/reason_codes.ts";
import type { AuthenticateRequest } from "../hooks/hooks.ts";
import type { Clock } from "../util/clock.ts";
import type { Logger } from "../util/logger.ts";
import { type AclRule, validateAclRule } from "./acl.ts";
import { type AuthDecision, type AuthProvider, PASS } from "./provider.ts";

/** What to do when the service cannot answer: `open` allows, `closed` denies (0x88). */
export type FailPolicy = "open" | "closed";

/** Options for {@linkcode HttpAuthProvider}. */
export interface HttpAuthOptions {
  url: string;
  /** Ms to wait for the response. */
  timeout: number;
  /** Most cached results (0 disables the cache). */
  cacheSize: number;
  /** Ms a cached result stays valid. */
  cacheTtl: number;
  failPolicy: FailPolicy;
  /** Extra request headers (e.g. an API key for the service). */
  headers?: Readonly<Record<string, string>>;
  clock: Clock;
  logger: Logger;
}

interface CacheEntry {
  decision: AuthDecision;
  expiresAt: number;
}

const encoder = new TextEncoder();

/** Asks an HTTP service about each CONNECT. */
export class HttpAuthProvider implements AuthProvider {
  readonly name = "http";
  #options: HttpAuthOptions;
  /** Insertion-ordered: the first entry is the oldest, evicted first. */
  #cache = new Map<string, CacheEntry>();

  constructor(options: HttpAuthOptions) {
    this.#options = options;
  }

  /** Cached results right now (for tests and metrics). */
  get cacheSize(): number {
    return this.#cache.size;
  }

  async authenticate(request: AuthenticateRequest): Promise<AuthDecision> {
    const options = this.#options;
    const body = JSON.stringify({
      clientId: request.clientId,
      username: request.username ?? null,
      password: request.password === undefined ? null : new TextDecoder().decode(request.password),
      remoteAddress: request.remoteAddress,
      protocolVersion: request.protocolVersion,
    });
    // The key is a digest of the request, so the cache never holds a password in clear.
    const key = options.cacheSize > 0 ? await digest(body) : "";
    if (options.cacheSize > 0) {
      const hit = this.#cache.get(key);
      if (hit && hit.expiresAt > options.clock.now()) return hit.decision;
      if (hit) this.#cache.delete(key);
    }
    const decision = await this.#ask(body);
    if (decision === undefined) return this.#failed();
    if (options.cacheSize > 0) {
      if (this.#cache.size >= options.cacheSize) {
        this.#cache.delete(this.#cache.keys().next().value!);
      }
      this.#cache.set(key, { decision, expiresAt: options.clock.now() + options.cacheTtl });
    }
    return decision;
  }

  close(): void {
    this.#cache.clear();
  }

  /** Undefined when the service failed to give a usable answer. */
  async #ask(body: string): Promise<AuthDecision | undefined> {
    const options = this.#options;
    let response: Response;
    try {
      response = await fetch(options.url, {
        method: "POST",
        headers: { "content-type": "application/json", ...options.headers },
        body,
        signal: AbortSignal.timeout(options.timeout),
      });
    } catch (error) {
      options.logger.warn("HTTP authentication failed", {
        url: redactUrl(options.url),
        error: error instanceof Error ? error.name : "error",
      });
      return undefined;
    }
    try {
      if (response.status === 401 || response.status === 403) {
        await response.body?.cancel();
        return deny("Not authorized by the authentication service");
      }
      if (response.status === 204) return { outcome: "allow" };
      if (response.status !== 200) {
        await response.body?.cancel();
        options.logger.warn("HTTP authentication failed", {
          url: redactUrl(options.url),
          status: response.status,
        });
        return undefined;
      }
      const text = await response.text();
      if (text.trim() === "") return { outcome: "allow" };
      return parseAnswer(text) ?? this.#badAnswer();
    } catch (error) {
      options.logger.warn("HTTP authentication failed", {
        url: redactUrl(options.url),
        error: error instanceof Error ? error.name : "error",
      });
      return undefined;
    }
  }

  #badAnswer(): undefined {
    this.#options.logger.warn("HTTP authentication failed: unexpected response body", {
      url: redactUrl(this.#options.url),
    });
    return undefined;
  }

  #failed(): AuthDecision {
    if (this.#options.failPolicy === "open") return { outcome: "allow" };
    return {
      outcome: "deny",
      reasonCode: ReasonCode.ServerUnavailable,
      reason: "Authentication service unavailable",
    };
  }
}

function deny(reason: string): AuthDecision {
  return { outcome: "deny", reasonCode: ReasonCode.NotAuthorized, reason };
}

/** A decision from a JSON body; undefined when the body is not one the contract allows. */
function parseAnswer(text: string): AuthDecision | undefined {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof json !== "object" || json === null) return undefined;
  const answer = json as { result?: unknown; username?: unknown; acl?: unknown };
  if (answer.result === "deny") return deny("Not authorized by the authentication service");
  if (answer.result === "pass") return PASS;
  if (answer.result !== "allow") return undefined;
  if (answer.username !== undefined && typeof answer.username !== "string") return undefined;
  let aclRules: AclRule[] | undefined;
  if (answer.acl !== undefined) {
    if (!Array.isArray(answer.acl)) return undefined;
    aclRules = answer.acl as AclRule[];
    if (aclRules.some((rule) => typeof rule !== "object" || validateAclRule(rule) !== undefined)) {
      return undefined;
    }
  }
  return { outcome: "allow", username: answer.username, aclRules };
}

async function digest(text: string): Promise<string> {
  const bytes = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
  let hex = "";
  for (const byte of bytes) hex += byte.toString(16).padStart(2, "0");
  return hex;
}

/** The URL without user info or query (either may hold a credential), for logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return "[invalid URL]";
  }
}
