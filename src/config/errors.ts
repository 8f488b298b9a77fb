/**
 * The configuration error: every problem found, one per line, each naming the key, what was
 * expected and what was given, and where the value came from.
 *
 * @module
 */

import { isSecretKey, REDACTED } from "../util/redact.ts";

/** One configuration problem. */
export interface ConfigIssue {
  /** The dotted key path, e.g. `listeners.tcp.port`; absent for problems with no key (YAML syntax). */
  readonly path?: string;
  /** What is wrong, e.g. `expected an integer from 0 to 65535, got "abc"`. */
  readonly message: string;
  /** Where the value came from: `<file>:<line>:<column>`, `env <VARIABLE>` or `overrides`. */
  readonly source?: string;
}

/**
 * Renders an issue as one line: `<path>: <message> (<source>)`, or `<source>: <message>` when it
 * names no key.
 *
 * @param issue The problem
 * @returns One line of text
 */
export function formatIssue(issue: ConfigIssue): string {
  if (issue.path === undefined) {
    return issue.source === undefined ? issue.message : `${issue.source}: ${issue.message}`;
  }
  const where = issue.source === undefined ? "" : ` (${issue.source})`;
  return `${issue.path}: ${issue.message}${where}`;
}

/**
 * An invalid configuration. The message lists every problem, one per line:
 *
 * ```text
 * Invalid configuration: 2 problems
 *   listeners.tcp.port: expected an integer from 0 to 65535, got "abc" (env PERCH_LISTENERS__TCP__PORT)
 *   mqtt.maxQoS: unknown key (did you mean "maxQos"?) (perch.yaml:7:3)
 * ```
 */
export class ConfigError extends Error {
  /** Every problem found. */
  readonly issues: readonly ConfigIssue[];

  /**
   * @param issues The problems, at least one
   * @param options The underlying error, e.g. a failed file read
   */
  constructor(issues: readonly ConfigIssue[], options?: ErrorOptions) {
    const count = issues.length === 1 ? "1 problem" : `${issues.length} problems`;
    super(
      `Invalid configuration: ${count}\n${issues.map((i) => `  ${formatIssue(i)}`).join("\n")}`,
      options,
    );
    this.name = "ConfigError";
    this.issues = issues;
  }
}

const MAX_QUOTED = 60;

/**
 * Tells whether a config key holds a secret or key material (so its value is never printed): the
 * logger's secret names plus names ending in `key` (`key`, `privateKey`, `apiKey`).
 *
 * @param name The last segment of a key path
 * @returns `true` when the value must be shown as `[redacted]`
 */
export function isSecretConfigKey(name: string): boolean {
  return isSecretKey(name) || name.toLowerCase().endsWith("key");
}

/**
 * Describes a given value for the `got ...` part of a message: strings quoted (and shortened), other
 * scalars as written, `a list`, `a mapping`, `nothing` for a missing value, and `[redacted]` under a
 * secret key.
 *
 * @param value The value given
 * @param key The last segment of its key path
 * @returns A short description
 */
export function describeGiven(value: unknown, key: string | undefined): string {
  if (key !== undefined && isSecretConfigKey(key)) return REDACTED;
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (typeof value === "string") {
    return JSON.stringify(value.length > MAX_QUOTED ? `${value.slice(0, MAX_QUOTED)}...` : value);
  }
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  return String(value);
}
