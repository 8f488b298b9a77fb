/**
 * Host facts an agent tells about itself at CONNECT: from MQTT 5 user properties, or from smq's
 * legacy CONNECT trailer (a two-byte length and a JSON object after the standard payload, which
 * smq's agent library always sends, `00 00` when it has nothing to say).
 *
 * Only the seven fact fields are taken, each a string of at most {@linkcode MAX_FACT_LENGTH}
 * UTF-16 units without control characters. Nothing here can change who the client is (its id,
 * user name, node or keep alive): smq unmarshals the JSON over its client record, so an agent
 * could rename itself; Perch reads the seven keys and nothing else. A bad trailer (not JSON, not
 * an object, a truncated or oversized one) yields no facts and a problem to log, never an error.
 *
 * @module
 */

import type { UserProperty } from "../codec/packets.ts";

/** The fact fields, by their smq JSON names (the same names serve as MQTT 5 user property keys). */
export const AGENT_FACT_KEYS = [
  "host_name",
  "intranet_ip",
  "public_ip",
  "platform",
  "arch",
  "os",
  "agent_version",
] as const;

/** One fact field. */
export type AgentFactKey = typeof AGENT_FACT_KEYS[number];

/** What an agent told about its host; a field it did not send (or sent badly) is absent. */
export type AgentFacts = Partial<Record<AgentFactKey, string>>;

/** Longest value kept for one fact, in UTF-16 code units; longer values are dropped. */
export const MAX_FACT_LENGTH = 256;

/** Longest JSON of a legacy trailer that is parsed; a longer one is ignored whole. */
export const MAX_TRAILER_JSON = 4096;

/** Facts read from a CONNECT, and what was wrong with them (for one log line). */
export interface FactsReading {
  /** Undefined when the CONNECT carried none that could be used. */
  facts: AgentFacts | undefined;
  /** What was ignored and why, or undefined when nothing was. */
  problem: string | undefined;
}

const KEYS: ReadonlySet<string> = new Set(AGENT_FACT_KEYS);
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** U+0000-U+001F and U+007F-U+009F: no place in a host name, and a log injection risk. */
function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) return true;
  }
  return false;
}

/** Why a value cannot be a fact, or undefined when it can. */
function valueProblem(key: string, value: unknown): string | undefined {
  if (typeof value !== "string") return `${key} is not a string`;
  if (value.length > MAX_FACT_LENGTH) return `${key} is longer than ${MAX_FACT_LENGTH} characters`;
  if (hasControlCharacter(value)) return `${key} contains a control character`;
  return undefined;
}

/**
 * Facts from an MQTT 5 CONNECT's user properties: the first property named after each fact key.
 *
 * @example
 * ```ts
 * import { factsFromUserProperties } from "./agent_facts.ts";
 *
 * const { facts } = factsFromUserProperties([["os", "linux"], ["team", "a"]]);
 * console.log(facts); // { os: "linux" }
 * ```
 */
export function factsFromUserProperties(properties: readonly UserProperty[]): FactsReading {
  let facts: AgentFacts | undefined;
  const problems: string[] = [];
  for (const [key, value] of properties) {
    if (!KEYS.has(key) || facts?.[key as AgentFactKey] !== undefined) continue;
    const problem = valueProblem(key, value);
    if (problem) problems.push(problem);
    else (facts ??= {})[key as AgentFactKey] = value;
  }
  return { facts, problem: problems.length > 0 ? problems.join("; ") : undefined };
}

/**
 * Facts from smq's legacy CONNECT trailer: the bytes after the standard payload, which must be a
 * two-byte big-endian length and that many bytes of a UTF-8 JSON object. `00 00` (or no trailer)
 * means no facts and no problem.
 */
export function factsFromLegacyTrailer(trailer: Uint8Array): FactsReading {
  if (trailer.length === 0) return { facts: undefined, problem: undefined };
  if (trailer.length < 2) return none("the trailer is shorter than its two-byte length");
  const length = (trailer[0] << 8) | trailer[1];
  if (trailer.length - 2 < length) {
    return none(`the trailer announces ${length} bytes but holds ${trailer.length - 2}`);
  }
  if (trailer.length - 2 > length) {
    return none(`${trailer.length - 2 - length} bytes follow the trailer's ${length} bytes`);
  }
  if (length === 0) return { facts: undefined, problem: undefined };
  if (length > MAX_TRAILER_JSON) {
    return none(`the trailer's ${length} bytes exceed ${MAX_TRAILER_JSON}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(utf8.decode(trailer.subarray(2)));
  } catch (error) {
    return none(`the trailer is not UTF-8 JSON (${error instanceof Error ? error.name : "error"})`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return none("the trailer's JSON is not an object");
  }
  let facts: AgentFacts | undefined;
  const problems: string[] = [];
  for (const key of AGENT_FACT_KEYS) {
    if (!Object.hasOwn(parsed, key)) continue;
    const value = (parsed as Record<string, unknown>)[key];
    const problem = valueProblem(key, value);
    if (problem) problems.push(problem);
    else (facts ??= {})[key] = value as string;
  }
  const ignored = Object.keys(parsed).filter((key) => !KEYS.has(key));
  if (ignored.length > 0) {
    // smq would let these overwrite its client record (id, user_name, node_id, keep_alive...).
    problems.push(`fields other than the host facts ignored: ${ignored.slice(0, 8).join(", ")}`);
  }
  return { facts, problem: problems.length > 0 ? problems.join("; ") : undefined };
}

function none(problem: string): FactsReading {
  return { facts: undefined, problem };
}

/**
 * Facts from both sources of one CONNECT: user properties first, the legacy trailer filling the
 * fields they did not give.
 */
export function readAgentFacts(
  userProperties: readonly UserProperty[] | undefined,
  trailer: Uint8Array | undefined,
): FactsReading {
  const fromProperties = userProperties
    ? factsFromUserProperties(userProperties)
    : { facts: undefined, problem: undefined };
  const fromTrailer = trailer
    ? factsFromLegacyTrailer(trailer)
    : { facts: undefined, problem: undefined };
  const facts = fromProperties.facts || fromTrailer.facts
    ? { ...fromTrailer.facts, ...fromProperties.facts }
    : undefined;
  const problems = [fromProperties.problem, fromTrailer.problem].filter((p) => p !== undefined);
  return { facts, problem: problems.length > 0 ? problems.join("; ") : undefined };
}
