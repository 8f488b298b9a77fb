/**
 * Configuration overrides from environment variables.
 *
 * The scheme (docs/configuration.md copies it):
 *
 * - Only variables starting with `PERCH_` are read, and every one of them must name a key.
 * - `__` (two underscores) separates key path segments: `PERCH_LISTENERS__TCP__PORT` sets
 *   `listeners.tcp.port`.
 * - Segments match the camelCase keys ignoring case and single underscores:
 *   `PERCH_MQTT__MAXPACKETSIZE` and `PERCH_MQTT__MAX_PACKET_SIZE` both set `mqtt.maxPacketSize`.
 * - Values are read as YAML scalars (`1884` a number, `true` a boolean, `2MiB` a string), except for
 *   keys that take text only (`node.id`, `log.level`, TLS paths), which keep the value as written.
 * - A variable naming an unknown key, or a section rather than a key, is an error naming the variable.
 * - Environment values override the config file.
 *
 * @module
 */

import { parse } from "yaml";
import type { z } from "zod";
import { isTextLeaf, looseKey, sectionKeys, suggestKey } from "./_walk.ts";
import type { ConfigIssue } from "./errors.ts";
import { configSchema } from "./schema.ts";

/** The prefix of configuration variables. */
export const ENV_PREFIX = "PERCH_";
/** The separator between key path segments in a variable name. */
export const ENV_SEPARATOR = "__";

/** One setting taken from the environment. */
export interface EnvOverride {
  /** The variable name, e.g. `PERCH_LISTENERS__TCP__PORT`. */
  variable: string;
  /** The key path it sets, e.g. `["listeners", "tcp", "port"]`. */
  path: string[];
  /** The value, read as a YAML scalar (or kept as text for text-only keys). */
  value: unknown;
}

/** The outcome of {@linkcode readEnvOverrides}. */
export interface EnvOverrides {
  /** The settings, in variable name order. */
  overrides: EnvOverride[];
  /** Variables that name no key. */
  issues: ConfigIssue[];
}

/** Reads a value as a YAML scalar; anything else (a mapping, a list, bad YAML) stays text. */
function scalar(text: string): unknown {
  try {
    const value = parse(text);
    return value === null || typeof value !== "object" ? value : text;
  } catch {
    return text;
  }
}

/** Matches a variable name to a key: its path and schema, or the issue with the name. */
function resolve(variable: string): { path: string[]; leaf: z.ZodType } | ConfigIssue {
  const source = `env ${variable}`;
  const segments = variable.slice(ENV_PREFIX.length).split(ENV_SEPARATOR);
  if (segments.some((s) => s === "")) {
    return {
      source,
      message: `malformed name: expected key names separated by "${ENV_SEPARATOR}"`,
    };
  }
  const path: string[] = [];
  let node: z.ZodType = configSchema;
  for (const segment of segments) {
    const keys = sectionKeys(node);
    if (keys === undefined) {
      return {
        source,
        message: `unknown key ${path.join(".")}.${segment}: ${
          path.join(".")
        } is a setting, not a section`,
      };
    }
    const key = Object.keys(keys).find((k) => looseKey(k) === looseKey(segment));
    if (key === undefined) {
      const parent = path.length === 0 ? "" : `${path.join(".")}.`;
      const suggestion = suggestKey(segment, Object.keys(keys));
      const hint = suggestion === undefined ? "" : ` (did you mean "${parent}${suggestion}"?)`;
      return { source, message: `unknown key ${parent}${segment}${hint}` };
    }
    path.push(key);
    node = keys[key];
  }
  const keys = sectionKeys(node);
  if (keys !== undefined) {
    return {
      source,
      message: `${path.join(".")} is a section, not a setting: set one of its keys (${
        Object.keys(keys).join(", ")
      })`,
    };
  }
  return { path, leaf: node };
}

/**
 * Finds the configuration settings in an environment (see the module documentation for the scheme).
 *
 * @param env Environment variables, e.g. `process.env`
 * @returns The settings to apply, and one issue per variable that names no key
 */
export function readEnvOverrides(env: Readonly<Record<string, string | undefined>>): EnvOverrides {
  const overrides: EnvOverride[] = [];
  const issues: ConfigIssue[] = [];
  for (const variable of Object.keys(env).filter((name) => name.startsWith(ENV_PREFIX)).sort()) {
    const text = env[variable];
    if (text === undefined) continue;
    const resolved = resolve(variable);
    if ("message" in resolved) {
      issues.push(resolved);
      continue;
    }
    const value = isTextLeaf(resolved.leaf) ? text : scalar(text);
    overrides.push({ variable, path: resolved.path, value });
  }
  return { overrides, issues };
}
