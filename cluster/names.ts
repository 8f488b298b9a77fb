/**
 * Names the NATS backbone gives things: KV keys for client ids and topics (KV keys allow only
 * `[-/=.\w]`), queue ids (which are also durable consumer names), and the set of filter subjects
 * of one consumer, which JetStream wants free of overlaps.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { BackboneError } from "../src/mod.ts";

const encoder = new TextEncoder();

/** Longest key text written as base64url before a hash stands in for it. */
const MAX_PLAIN_KEY = 200;

/**
 * A KV key token for any string: `b` and its UTF-8 base64url (no `.`, so a key made of such tokens
 * can be matched by a wildcard exactly), or `h` and a SHA-256 for a long one. The string itself is
 * always stored in the value, so nothing needs to decode a key.
 */
export function keyToken(text: string): string {
  const bytes = encoder.encode(text);
  if (bytes.length <= (MAX_PLAIN_KEY * 3) / 4) {
    return "b" +
      (bytes.length === 0 ? "" : bytes.toBase64({ alphabet: "base64url", omitPadding: true }));
  }
  return "h" + createHash("sha256").update(bytes).digest("hex");
}

/** A short stable id: 32 hex digits of SHA-256. */
export function shortHash(text: string): string {
  return createHash("sha256").update(text).digest("hex").slice(0, 32);
}

/** A go duration for a per-message TTL: whole seconds, at least one. */
export function ttlSeconds(ms: number): string {
  return `${Math.max(1, Math.ceil(ms / 1000))}s`;
}

/** Whether subject `a` matches every subject `b` matches (both may hold wildcards). */
export function subjectCovers(a: string, b: string): boolean {
  const at = a.split(".");
  const bt = b.split(".");
  for (let i = 0; i < at.length; i++) {
    if (at[i] === ">") return bt.length > i;
    if (i >= bt.length || bt[i] === ">") return false;
    if (at[i] === "*" || at[i] === bt[i]) continue;
    return false;
  }
  return at.length === bt.length;
}

/** Whether some subject matches both `a` and `b`. */
export function subjectsCollide(a: string, b: string): boolean {
  const at = a.split(".");
  const bt = b.split(".");
  for (let i = 0; i < Math.min(at.length, bt.length); i++) {
    if (at[i] === ">" || bt[i] === ">") return true;
    if (at[i] === "*" || bt[i] === "*" || at[i] === bt[i]) continue;
    return false;
  }
  return at.length === bt.length;
}

/** The narrowest subject matching everything `a` or `b` matches, token by token. */
function generalize(a: string, b: string): string {
  const at = a.split(".");
  const bt = b.split(".");
  const out: string[] = [];
  for (let i = 0; i < Math.max(at.length, bt.length); i++) {
    if (i >= at.length || i >= bt.length || at[i] === ">" || bt[i] === ">") {
      out.push(">");
      break;
    }
    out.push(at[i] === bt[i] ? at[i] : "*");
  }
  return out.join(".");
}

/**
 * Filter subjects for one consumer: covered subjects dropped, and any two that still overlap
 * (neither covering the other, such as `a.*.c` and `a.b.*`) replaced by one that covers both.
 * `exact` is false when such a merge widened the set: the consumer then also captures topics no
 * filter matches, which the reader must skip.
 */
export function consumerSubjects(subjects: string[]): { subjects: string[]; exact: boolean } {
  let set = [...new Set(subjects)];
  let exact = true;
  for (;;) {
    set = set.filter((s, i) =>
      !set.some((other, j) =>
        j !== i && subjectCovers(other, s) && (!subjectCovers(s, other) || j < i)
      )
    );
    let merged = false;
    outer: for (let i = 0; i < set.length; i++) {
      for (let j = i + 1; j < set.length; j++) {
        if (!subjectsCollide(set[i], set[j])) continue;
        const wide = generalize(set[i], set[j]);
        set = [...set.filter((_, k) => k !== i && k !== j), wide];
        exact = false;
        merged = true;
        break outer;
      }
    }
    if (!merged) return { subjects: set, exact };
  }
}

/** The text of an unknown error. */
function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Whether a JetStream error says an expected revision or sequence did not match. */
export function isWrongSequence(error: unknown): boolean {
  return /wrong last sequence|10071/.test(describe(error)) ||
    (error as { code?: number })?.code === 10071;
}

/** Whether a JetStream error says a consumer does not exist. */
export function isConsumerNotFound(error: unknown): boolean {
  return (error as { code?: number })?.code === 10014 ||
    /consumer not found/i.test(describe(error));
}

/**
 * Whether nothing took a JetStream request (no responders; the client calls that "JetStream not
 * enabled"). In a cluster that happens while no server has the interest yet: right after a stream
 * is created through another server, or while a stream elects a new leader. Nothing was stored,
 * so the request may be sent again.
 */
export function isNoResponders(error: unknown): boolean {
  const name = (error as { name?: string })?.name;
  return name === "JetStreamNotEnabled" || name === "NoRespondersError" ||
    /no responders/i.test(describe(error));
}

/**
 * Whether a JetStream request failed because the cluster is between states, so that the same
 * request, if it is idempotent, may succeed when sent again: no responders, no answer in time (a
 * stream created by two servers at once leaves one request unanswered), or the meta leader not
 * known yet (10008, "JetStream system temporarily unavailable").
 */
export function isTransient(error: unknown): boolean {
  return isNoResponders(error) || (error as { name?: string })?.name === "TimeoutError" ||
    (error as { code?: number })?.code === 10008 ||
    /temporarily unavailable/i.test(describe(error));
}

/** Pauses between two attempts of {@linkcode retrying}: doubling, from 50 ms to 1 s. */
const FIRST_PAUSE_MS = 50;
const LONGEST_PAUSE_MS = 1_000;

/**
 * Runs `work` until it succeeds, again after each failure that `retry` accepts while less than
 * `budgetMs` has passed since the first attempt; otherwise rejects with the last failure.
 */
export async function retrying<T>(
  work: () => Promise<T>,
  retry: (error: unknown) => boolean,
  budgetMs: number,
): Promise<T> {
  const deadline = Date.now() + budgetMs;
  for (let pause = FIRST_PAUSE_MS;; pause = Math.min(2 * pause, LONGEST_PAUSE_MS)) {
    try {
      return await work();
    } catch (error) {
      if (!retry(error) || Date.now() + pause >= deadline) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
}

/** A backbone error for any failure of a NATS call: a timeout, or the service unavailable. */
export function asBackboneError(operation: string, error: unknown): BackboneError {
  if (error instanceof BackboneError) return error;
  const name = (error as { name?: string })?.name ?? "";
  const text = describe(error);
  const timeout = /timeout/i.test(name) || /timeout|timed out/i.test(text);
  return new BackboneError(timeout ? "timeout" : "unavailable", `${operation}: ${text}`, {
    cause: error,
  });
}

/** Runs `work`, turning any failure into a {@linkcode BackboneError}. */
export async function guarded<T>(operation: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw asBackboneError(operation, error);
  }
}
