/**
 * Loading the configuration: a YAML file, then environment overrides, then programmatic overrides,
 * validated by {@linkcode configSchema}.
 *
 * @module
 */

import { readFile } from "node:fs/promises";
import { type Document, isMap, isScalar, LineCounter, parseDocument } from "yaml";
import type { z } from "zod";
import { schemaAt, sectionKeys, suggestKey, unwrap } from "./_walk.ts";
import { readEnvOverrides } from "./env.ts";
import { ConfigError, type ConfigIssue, describeGiven } from "./errors.ts";
import { type Config, type ConfigInput, configSchema } from "./schema.ts";

/** Options for {@linkcode loadConfig}. */
export interface LoadConfigOptions {
  /** Path of a YAML config file. Without one, defaults apply (then `env` and `overrides`). */
  file?: string;
  /**
   * Environment variables; the `PERCH_` ones override the file (the scheme is documented in
   * `./env.ts`). Without this option the environment is not read: `main.ts` passes
   * `process.env`.
   */
  env?: Readonly<Record<string, string | undefined>>;
  /** Settings applied last, over the file and the environment (for tests and embedding). */
  overrides?: ConfigInput;
}

type Json = Record<string, unknown>;
/** Where each key's value came from, by dotted path. */
type Sources = Map<string, string>;

function isPlainObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Records `<file>:<line>:<column>` of every mapping key in the document. */
function recordKeyPositions(
  node: unknown,
  path: readonly string[],
  at: (offset: number) => string,
  sources: Sources,
): void {
  if (!isMap(node)) return;
  for (const pair of node.items) {
    if (!isScalar(pair.key) || pair.key.range === undefined || pair.key.range === null) continue;
    const keyPath = [...path, String(pair.key.value)];
    sources.set(keyPath.join("."), at(pair.key.range[0]));
    recordKeyPositions(pair.value, keyPath, at, sources);
  }
}

async function readYaml(file: string, sources: Sources): Promise<Json> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ConfigError([{ source: file, message: `cannot read the file: ${reason}` }], {
      cause: error,
    });
  }
  const lines = new LineCounter();
  const at = (offset: number) => {
    const { line, col } = lines.linePos(offset);
    return `${file}:${line}:${col}`;
  };
  const doc: Document = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => ({ source: at(e.pos[0]), message: `invalid YAML: ${e.message}` })),
    );
  }
  const value: unknown = doc.toJS();
  if (value === null || value === undefined) return {};
  if (!isPlainObject(value)) {
    throw new ConfigError([{
      source: at(0),
      message: `expected a mapping of settings at the top level, got ${
        describeGiven(value, undefined)
      }`,
    }]);
  }
  recordKeyPositions(doc.contents, [], at, sources);
  dropEmptySections(value, configSchema);
  return value;
}

/**
 * Removes sections written with no keys (`listeners:` with everything below commented out), which
 * YAML reads as null, so their defaults apply.
 */
function dropEmptySections(input: Json, schema: z.ZodType): void {
  const keys = sectionKeys(schema);
  if (keys === undefined) return;
  for (const [key, value] of Object.entries(input)) {
    if (!Object.hasOwn(keys, key) || sectionKeys(keys[key]) === undefined) continue;
    if (value === null) delete input[key];
    else if (isPlainObject(value)) dropEmptySections(value, keys[key]);
  }
}

function setPath(target: Json, path: readonly string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    if (!isPlainObject(node[key])) node[key] = {};
    node = node[key] as Json;
  }
  node[path[path.length - 1]] = value;
}

/** Copies the leaves of `from` into `target`, recording "overrides" as their source. */
function mergeOverrides(target: Json, from: Json, path: readonly string[], sources: Sources): void {
  for (const [key, value] of Object.entries(from)) {
    const keyPath = [...path, key];
    if (isPlainObject(value)) {
      if (!isPlainObject(target[key])) target[key] = {};
      mergeOverrides(target[key] as Json, value, keyPath, sources);
    } else {
      target[key] = value;
      sources.set(keyPath.join("."), "overrides");
    }
  }
}

function valueAt(input: unknown, path: readonly string[]): unknown {
  let node = input;
  for (const key of path) {
    node = isPlainObject(node) || Array.isArray(node) ? (node as Json)[key] : undefined;
  }
  return node;
}

/** The source of a key's value, or of its nearest ancestor's. */
function sourceOf(path: readonly string[], sources: Sources): string | undefined {
  for (let n = path.length; n > 0; n--) {
    const source = sources.get(path.slice(0, n).join("."));
    if (source !== undefined) return source;
  }
  return undefined;
}

/**
 * Turns zod issues into config issues. The schema writes every message as `expected ...` (this
 * appends what was given) or as a complete sentence (refinements such as `required when ...`).
 */
function toConfigIssues(
  issues: readonly z.core.$ZodIssue[],
  input: Json,
  sources: Sources,
): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  const seen = new Set<string>();
  const add = (path: string[], message: string) => {
    const line = `${path.join(".")}\n${message}`;
    if (seen.has(line)) return;
    seen.add(line);
    out.push({
      path: path.join("."),
      message,
      source: sourceOf(path, sources),
    });
  };
  for (const issue of issues) {
    const path = issue.path.map(String);
    if (issue.code === "unrecognized_keys") {
      // A zod issue path always names a section of the schema.
      const known = Object.keys(sectionKeys(schemaAt(configSchema, path)!)!);
      for (const key of issue.keys) {
        if (known.includes(key)) {
          // A key of another variant of a union (`backbone.path` with `kind: memory`).
          const union = unwrap(schemaAt(configSchema, path)!).inner as z.ZodDiscriminatedUnion;
          const discriminator = [...path, union.def.discriminator];
          const variant = JSON.stringify(valueAt(input, discriminator));
          add([...path, key], `not a key of ${discriminator.join(".")} ${variant}`);
          continue;
        }
        const suggestion = suggestKey(key, known);
        add(
          [...path, key],
          `unknown key${suggestion === undefined ? "" : ` (did you mean "${suggestion}"?)`}`,
        );
      }
    } else if (issue.message.startsWith("expected ")) {
      add(path, `${issue.message}, got ${describeGiven(valueAt(input, path), path.at(-1))}`);
    } else {
      add(path, issue.message);
    }
  }
  return out;
}

/**
 * Loads and validates the configuration.
 *
 * Precedence, lowest first: schema defaults, the YAML file, `PERCH_*` environment variables, then
 * `overrides`. Durations come out in milliseconds and sizes in bytes.
 *
 * @example Loading a file with the process environment
 * ```ts ignore
 * import { loadConfig } from "./load.ts";
 *
 * const config = await loadConfig({ file: "perch.yaml", env: process.env });
 * console.log(config.listeners.tcp.port); // 1883 unless configured
 * ```
 *
 * @param options The file, environment and overrides
 * @returns The validated configuration
 * @throws {ConfigError} listing every problem: unreadable file, YAML syntax (with line and column),
 * unknown keys, wrong types, out-of-range values, unknown `PERCH_*` variables
 */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<Config> {
  const sources: Sources = new Map();
  const input = options.file === undefined ? {} : await readYaml(options.file, sources);

  const env = readEnvOverrides(options.env ?? {});
  for (const { variable, path, value } of env.overrides) {
    setPath(input, path, value);
    sources.set(path.join("."), `env ${variable}`);
  }
  if (options.overrides !== undefined) {
    mergeOverrides(input, options.overrides as Json, [], sources);
  }

  const result = configSchema.safeParse(input);
  const issues = [
    ...env.issues,
    ...(result.success ? [] : toConfigIssues(result.error.issues, input, sources)),
    ...(result.success ? crossChecks(result.data, sources) : []),
  ];
  if (issues.length > 0 || !result.success) throw new ConfigError(issues);
  return result.data;
}

/**
 * Problems between keys that are each valid alone, and defaults that depend on another key: a
 * `mqtt.stuckSubscriberTimeout` left out is at most half of `backbone.timeout`.
 */
function crossChecks(config: Config, sources: Sources): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const mqtt = config.mqtt;
  const bound = config.backbone.timeout;
  if (mqtt.queueFullPolicy === "wait" && mqtt.stuckSubscriberTimeout >= bound) {
    // Every wait is a backbone call bounded by backbone.timeout: a publish waiting for a stuck
    // subscriber would fail there (its publisher disconnected) before the subscriber is judged.
    const source = sources.get("mqtt.stuckSubscriberTimeout");
    if (source === undefined) mqtt.stuckSubscriberTimeout = Math.max(100, Math.floor(bound / 2));
    else {
      issues.push({
        path: "mqtt.stuckSubscriberTimeout",
        message: `must be shorter than backbone.timeout (${bound} ms), which bounds every wait ` +
          `for room; got ${mqtt.stuckSubscriberTimeout} ms`,
        source,
      });
    }
  }
  return issues;
}
