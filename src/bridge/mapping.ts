/**
 * Mappings from MQTT topics to Kafka topics: what one says, how it is checked (each problem named
 * by its field), and how the set of them is kept in one document of the backbone's config store.
 *
 * A mapping's `filter` matches the MQTT topic after `$queue/` (a publish to `$queue/{topic}` goes
 * to every mapping whose filter matches `{topic}`, and not to MQTT subscribers); with `copy` it
 * also matches ordinary publishes, which then go to both.
 *
 * @module
 */

import { parseSharedFilter, validateTopicFilter } from "../topic/mod.ts";

/** How a message becomes a Kafka record's value. */
export const VALUE_FORMATS = ["raw", "json"] as const;
export type ValueFormat = typeof VALUE_FORMATS[number];

/** How the `json` envelope writes the payload. */
export const PAYLOAD_ENCODINGS = ["base64", "utf8"] as const;
export type PayloadEncoding = typeof PAYLOAD_ENCODINGS[number];

/** Placeholders of a key template. */
export const KEY_PLACEHOLDERS = ["topic", "clientId", "username"] as const;

/** One mapping. */
export interface KafkaMapping {
  /** Names the mapping in the API and the metrics: letters, digits, `.`, `_`, `-`. */
  name: string;
  /** MQTT topic filter, matched against the topic after `$queue/` (and, with `copy`, as is). */
  filter: string;
  /** The Kafka topic the records go to. */
  kafkaTopic: string;
  /**
   * Template of the record key: `{topic}` (the MQTT topic, after `$queue/`), `{clientId}`,
   * `{username}`; a key that comes out empty is no key (Kafka spreads such records).
   */
  key: string;
  /** `raw`: the payload bytes; `json`: an envelope with the topic, payload and metadata. */
  format: ValueFormat;
  /** In the `json` envelope: `base64`, or `utf8` (base64 still for a payload that is not UTF-8). */
  payloadEncoding: PayloadEncoding;
  /** MQTT 5 user properties become Kafka record headers. */
  headers: boolean;
  /** Ordinary publishes that match `filter` go to Kafka too (and still to MQTT subscribers). */
  copy: boolean;
}

/** A mapping as given: every field but the name, filter and Kafka topic has a default. */
export type KafkaMappingInput =
  & Pick<KafkaMapping, "name" | "filter" | "kafkaTopic">
  & Partial<Omit<KafkaMapping, "name" | "filter" | "kafkaTopic">>;

/** One problem with a mapping, by field. */
export interface MappingIssue {
  field: string;
  message: string;
}

/** Most mappings a bridge holds. */
export const MAX_MAPPINGS = 1000;

const NAME = /^[A-Za-z0-9._-]{1,64}$/;
/** Kafka's own rule for topic names. */
const KAFKA_TOPIC = /^[A-Za-z0-9._-]{1,249}$/;

/** Problems with a key template, or none. */
function templateProblem(template: string): string | undefined {
  const outside = template.replace(/\{([A-Za-z]+)\}/g, (whole, name: string) => {
    return (KEY_PLACEHOLDERS as readonly string[]).includes(name) ? "" : whole;
  });
  const unknown = /\{[^}]*\}/.exec(outside);
  if (unknown) {
    return `unknown placeholder ${unknown[0]}: expected {topic}, {clientId} or {username}`;
  }
  if (/[{}]/.test(outside)) return 'a "{" or "}" outside a placeholder';
  return undefined;
}

/**
 * Checks a mapping and fills in its defaults: the mapping, or every problem found.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkMapping } from "./mapping.ts";
 *
 * const ok = checkMapping({ name: "events", filter: "event", kafkaTopic: "event" });
 * assert.deepEqual(ok, {
 *   mapping: {
 *     name: "events", filter: "event", kafkaTopic: "event", key: "{topic}", format: "raw",
 *     payloadEncoding: "base64", headers: true, copy: false,
 *   },
 * });
 * const bad = checkMapping({ name: "a b", filter: "a/#/b", kafkaTopic: "x" });
 * assert.deepEqual(bad.issues?.map((i) => i.field), ["name", "filter"]);
 * ```
 */
export function checkMapping(
  input: KafkaMappingInput,
): { mapping: KafkaMapping; issues?: undefined } | { mapping?: undefined; issues: MappingIssue[] } {
  const mapping: KafkaMapping = {
    name: input.name,
    filter: input.filter,
    kafkaTopic: input.kafkaTopic,
    key: input.key ?? "{topic}",
    format: input.format ?? "raw",
    payloadEncoding: input.payloadEncoding ?? "base64",
    headers: input.headers ?? true,
    copy: input.copy ?? false,
  };
  const issues: MappingIssue[] = [];
  const issue = (field: string, message: string) => issues.push({ field, message });
  if (typeof mapping.name !== "string" || !NAME.test(mapping.name)) {
    issue("name", 'expected 1 to 64 letters, digits, ".", "_" or "-"');
  }
  if (typeof mapping.filter !== "string") issue("filter", "expected a topic filter");
  else {
    const invalid = validateTopicFilter(mapping.filter, { rejectControlCharacters: true });
    if (invalid) issue("filter", `expected a topic filter: ${invalid.message}`);
    else if (parseSharedFilter(mapping.filter) !== undefined) {
      issue(
        "filter",
        "expected the topic filter without $share/ or $queue/: it is matched against the topic after $queue/",
      );
    }
  }
  if (
    typeof mapping.kafkaTopic !== "string" || !KAFKA_TOPIC.test(mapping.kafkaTopic) ||
    mapping.kafkaTopic === "." || mapping.kafkaTopic === ".."
  ) {
    issue("kafkaTopic", 'expected a Kafka topic name: 1 to 249 letters, digits, ".", "_" or "-"');
  }
  if (typeof mapping.key !== "string") issue("key", "expected a key template");
  else {
    const problem = templateProblem(mapping.key);
    if (problem) issue("key", `expected a key template: ${problem}`);
  }
  if (!(VALUE_FORMATS as readonly string[]).includes(mapping.format)) {
    issue("format", 'expected "raw" or "json"');
  }
  if (!(PAYLOAD_ENCODINGS as readonly string[]).includes(mapping.payloadEncoding)) {
    issue("payloadEncoding", 'expected "base64" or "utf8"');
  }
  if (typeof mapping.headers !== "boolean") issue("headers", "expected true or false");
  if (typeof mapping.copy !== "boolean") issue("copy", "expected true or false");
  return issues.length > 0 ? { issues } : { mapping };
}

/** The config store key of the mappings document. */
export const MAPPINGS_KEY = "bridge/kafka/mappings";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The mappings document: `{"mappings": [...]}` as JSON. */
export function encodeMappings(mappings: readonly KafkaMapping[]): Uint8Array {
  return encoder.encode(JSON.stringify({ mappings }));
}

/**
 * Reads the mappings document: the valid mappings, and a problem for each entry that is not one
 * (another node's newer version, or a hand edit), which the caller logs.
 */
export function decodeMappings(
  bytes: Uint8Array | undefined,
): { mappings: KafkaMapping[]; problems: string[] } {
  if (bytes === undefined) return { mappings: [], problems: [] };
  let document: unknown;
  try {
    document = JSON.parse(decoder.decode(bytes));
  } catch (error) {
    return { mappings: [], problems: [`not JSON: ${(error as Error).message}`] };
  }
  const list = (document as { mappings?: unknown })?.mappings;
  if (!Array.isArray(list)) return { mappings: [], problems: ['no "mappings" list'] };
  const mappings: KafkaMapping[] = [];
  const problems: string[] = [];
  const names = new Set<string>();
  list.forEach((entry, i) => {
    const checked = typeof entry === "object" && entry !== null
      ? checkMapping(entry as KafkaMappingInput)
      : { issues: [{ field: "(entry)", message: "expected a mapping" }] };
    if (checked.issues) {
      problems.push(
        `mapping ${i}: ${checked.issues.map((p) => `${p.field}: ${p.message}`).join("; ")}`,
      );
    } else if (names.has(checked.mapping.name)) {
      problems.push(`mapping ${i}: a second mapping named "${checked.mapping.name}"`);
    } else {
      names.add(checked.mapping.name);
      mappings.push(checked.mapping);
    }
  });
  return { mappings, problems };
}
