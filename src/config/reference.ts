/**
 * The config reference, generated from the schema so docs/configuration.md never drifts from it.
 *
 * @module
 */

import { stringify } from "yaml";
import { z } from "zod";
import { sectionKeys, unwrap } from "./_walk.ts";
import { configSchema } from "./schema.ts";

/** One documented key. */
export interface ConfigReferenceEntry {
  /** Dotted key path, e.g. `listeners.tcp.port`. */
  path: string;
  /** Accepted values in words, e.g. `integer 0..65535`, `duration >= 1ms`, `"text" | "json"`. */
  type: string;
  /** The default as written in YAML (`1MiB`, `1883`, `true`), or `undefined` when the key has none. */
  default: string | undefined;
  /** What the key does; keys of one backbone kind start with `(kind: <kind>)`. */
  description: string;
}

function text(value: unknown): string {
  return typeof value === "string" ? value : "";
}

function defaultText(schema: z.ZodType): string | undefined {
  const { meta, defaulted } = unwrap(schema);
  if (typeof meta.defaultLabel === "string") return meta.defaultLabel;
  return defaulted === undefined ? undefined : stringify(defaulted.def.defaultValue).trimEnd();
}

function walk(
  schema: z.ZodType,
  path: string[],
  prefix: string,
  out: ConfigReferenceEntry[],
): void {
  const { inner, meta, defaulted } = unwrap(schema);
  if (inner instanceof z.ZodDiscriminatedUnion) {
    // One row for the discriminator listing every kind, then each kind's own keys.
    const discriminator = inner.def.discriminator;
    const variants = (inner.options as z.ZodObject[]).map((v) => ({
      shape: v.shape as Record<string, z.ZodType>,
      kind: unwrap(v.shape[discriminator] as z.ZodType),
    }));
    const kinds = variants.map((v) => [...(v.kind.inner as z.ZodLiteral).values][0]);
    const defaultValue = defaulted?.def.defaultValue as Record<string, unknown> | undefined;
    out.push({
      path: [...path, discriminator].join("."),
      type: kinds.map((k) => JSON.stringify(k)).join(" | "),
      default: defaultValue === undefined ? undefined : String(defaultValue[discriminator]),
      description: [meta.description, ...variants.map((v) => v.kind.meta.description)].map(text)
        .join(" "),
    });
    // A key several kinds share (such as `timeout`) is one row naming each of them.
    const owners = new Map<string, { child: z.ZodType; kinds: string[] }>();
    variants.forEach((variant, i) => {
      for (const [key, child] of Object.entries(variant.shape)) {
        if (key === discriminator) continue;
        const owner = owners.get(key);
        if (owner) owner.kinds.push(String(kinds[i]));
        else owners.set(key, { child, kinds: [String(kinds[i])] });
      }
    });
    for (const [key, { child, kinds: of }] of owners) {
      walk(child, [...path, key], `(kind: ${of.join(", ")}) `, out);
    }
    return;
  }
  const keys = sectionKeys(schema);
  if (keys !== undefined) {
    for (const [key, child] of Object.entries(keys)) walk(child, [...path, key], prefix, out);
    return;
  }
  out.push({
    path: path.join("."),
    type: text(meta.typeLabel),
    default: defaultText(schema),
    description: prefix + text(meta.description),
  });
}

/**
 * Lists every configuration key in schema order with its type, default and description: the
 * source of the config reference in docs/configuration.md.
 *
 * @example Rendering the reference as Markdown table rows
 * ```ts
 * import { describeConfig } from "./reference.ts";
 *
 * const cell = (text: string) => text.replaceAll("|", "\\|"); // types such as `0 | 1 | 2`
 * const rows = describeConfig().map((key) =>
 *   `| \`${key.path}\` | ${cell(key.type)} | ${key.default ?? ""} | ${cell(key.description)} |`
 * );
 * ```
 *
 * @returns One entry per leaf key
 */
export function describeConfig(): ConfigReferenceEntry[] {
  const out: ConfigReferenceEntry[] = [];
  walk(configSchema, [], "", out);
  return out;
}
