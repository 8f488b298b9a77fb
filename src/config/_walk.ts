/**
 * Walking the config schema by key: shared by the environment overrides (which match variable
 * names to keys), the error messages (which suggest keys) and the config reference.
 *
 * @module
 */

import { z } from "zod";

/** A schema with its default, optional and prefault wrappers removed. */
export interface Unwrapped {
  /** The schema inside the wrappers. */
  inner: z.ZodType;
  /** Metadata of every layer, outer layers winning. */
  meta: Record<string, unknown>;
  /** The wrapper holding the default (input form), if any. */
  defaulted?: z.ZodPrefault | z.ZodDefault;
}

/**
 * Removes the default, optional and prefault wrappers of a schema.
 *
 * @param schema A key's schema
 * @returns The inner schema, the merged metadata and the wrapper holding the default
 */
export function unwrap(schema: z.ZodType): Unwrapped {
  let inner = schema;
  let meta: Record<string, unknown> = {};
  let defaulted: z.ZodPrefault | z.ZodDefault | undefined;
  for (;;) {
    meta = { ...inner.meta(), ...meta };
    if (inner instanceof z.ZodPrefault || inner instanceof z.ZodDefault) {
      defaulted ??= inner;
      inner = inner.unwrap() as z.ZodType;
    } else if (inner instanceof z.ZodOptional) {
      inner = inner.unwrap() as z.ZodType;
    } else {
      return { inner, meta, defaulted };
    }
  }
}

/**
 * The keys of a section: an object's shape, or for a discriminated union the keys of all variants.
 *
 * @param schema A key's schema (wrappers allowed)
 * @returns Key name to schema, or `undefined` when the key is a leaf
 */
export function sectionKeys(schema: z.ZodType): Record<string, z.ZodType> | undefined {
  const { inner } = unwrap(schema);
  if (inner instanceof z.ZodObject) return inner.shape as Record<string, z.ZodType>;
  if (inner instanceof z.ZodDiscriminatedUnion) {
    const keys: Record<string, z.ZodType> = {};
    for (const option of inner.options) Object.assign(keys, sectionKeys(option as z.ZodType));
    return keys;
  }
  return undefined;
}

/**
 * Finds the schema of a key path.
 *
 * @param schema The root schema
 * @param path Key names from the root
 * @returns The key's schema, or `undefined` when the path names no key
 */
export function schemaAt(schema: z.ZodType, path: readonly string[]): z.ZodType | undefined {
  let node: z.ZodType | undefined = schema;
  for (const key of path) {
    const keys: Record<string, z.ZodType> | undefined = node && sectionKeys(node);
    node = keys && Object.hasOwn(keys, key) ? keys[key] : undefined;
  }
  return node;
}

/**
 * Tells whether a leaf takes text only (strings, string enums and literals), so a value from the
 * environment must stay a string instead of being read as a YAML scalar.
 *
 * @param schema A leaf's schema (wrappers allowed)
 * @returns `true` for a text-only leaf
 */
export function isTextLeaf(schema: z.ZodType): boolean {
  const { inner } = unwrap(schema);
  if (inner instanceof z.ZodString) return true;
  if (inner instanceof z.ZodEnum) return inner.options.every((v) => typeof v === "string");
  if (inner instanceof z.ZodLiteral) return [...inner.values].every((v) => typeof v === "string");
  return false;
}

/** Optimal string alignment distance: edits, with adjacent transpositions counting as one. */
function editDistance(a: string, b: string): number {
  const rows = Array.from(
    { length: a.length + 1 },
    (_, i) => [i, ...new Array<number>(b.length).fill(0)],
  );
  for (let j = 1; j <= b.length; j++) rows[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      rows[i][j] = Math.min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        rows[i][j] = Math.min(rows[i][j], rows[i - 2][j - 2] + 1);
      }
    }
  }
  return rows[a.length][b.length];
}

/**
 * Normalizes a key name for loose matching: lower case, without `_`, so `MAX_PACKET_SIZE`,
 * `MAXPACKETSIZE` and `maxPacketSize` are the same key.
 *
 * @param name A key name or environment variable segment
 * @returns The normalized name
 */
export function looseKey(name: string): string {
  return name.toLowerCase().replaceAll("_", "");
}

/**
 * Picks the known key a misspelled one most likely meant: a loose match, else the closest within
 * one edit (short names) or two.
 *
 * @param name The unknown key
 * @param known The keys allowed at that place
 * @returns The suggestion, or `undefined` when nothing is close
 */
export function suggestKey(name: string, known: readonly string[]): string | undefined {
  const wanted = looseKey(name);
  let best: string | undefined;
  let bestDistance = wanted.length < 5 ? 1 : 2;
  for (const key of known) {
    const distance = editDistance(wanted, looseKey(key));
    if (distance <= bestDistance && (best === undefined || distance < bestDistance)) {
      best = key;
      bestDistance = distance;
    }
  }
  return best;
}
