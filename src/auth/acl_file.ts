/**
 * An ACL rules file: YAML holding a list of rules, or `{ default: allow|deny, rules: [...] }`.
 * {@linkcode AclRuleFile} reads and writes one and tells whether it changed since; the rules in
 * force live in the backbone's config store (`./shared_acl.ts`), which this file seeds.
 *
 * @module
 */

import { readFile } from "node:fs/promises";
import { parse, stringify } from "yaml";
import { writeFileAtomically } from "../util/atomic_file.ts";
import { type AclDefault, type AclRule, validateAclRule } from "./acl.ts";

/** Thrown for a rules file that cannot be used, naming the file and what is wrong. */
export class AclFileError extends Error {
  override name = "AclFileError";
}

/** The rules of a rules file (or of the config store) and the default they set, if any. */
export interface AclDocument {
  rules: AclRule[];
  defaultPolicy: AclDefault | undefined;
}

/** One rules file: read, written, and compared with what this process last read or wrote. */
export class AclRuleFile {
  readonly path: string;
  /** The text last read or written. */
  #text: string | undefined;

  constructor(path: string) {
    this.path = path;
  }

  /**
   * Reads the file.
   *
   * @throws {AclFileError} naming the rule and the problem
   */
  async read(): Promise<AclDocument> {
    const text = await this.#readText();
    const document = parseAclFile(text, this.path);
    this.#text = text;
    return document;
  }

  /**
   * Reads the file if its text differs from what this process last read or wrote.
   *
   * @returns the file's rules, or undefined when it did not change
   * @throws {AclFileError} naming the rule and the problem
   */
  async readIfChanged(): Promise<AclDocument | undefined> {
    const text = await this.#readText();
    if (text === this.#text) return undefined;
    const document = parseAclFile(text, this.path);
    this.#text = text;
    return document;
  }

  /** Writes the rules (and the default, if set) atomically. */
  async write(document: AclDocument): Promise<void> {
    const body = document.defaultPolicy === undefined
      ? document.rules
      : { default: document.defaultPolicy, rules: document.rules };
    const text = stringify(body);
    await writeFileAtomically(this.path, text);
    this.#text = text;
  }

  async #readText(): Promise<string> {
    try {
      return await readFile(this.path, "utf8");
    } catch (error) {
      throw new AclFileError(`Cannot read ACL file ${this.path}`, { cause: error });
    }
  }
}

/**
 * Parses the text of a rules file.
 *
 * @throws {AclFileError} naming the first bad rule
 */
export function parseAclFile(text: string, source: string): AclDocument {
  let document: unknown;
  try {
    document = parse(text);
  } catch (error) {
    throw new AclFileError(`${source}: not valid YAML`, { cause: error });
  }
  document ??= [];
  let rules: unknown;
  let defaultPolicy: AclDefault | undefined;
  if (Array.isArray(document)) rules = document;
  else if (typeof document === "object") {
    const { default: given, rules: list, ...rest } = document as Record<string, unknown>;
    const unknown = Object.keys(rest);
    if (unknown.length > 0) throw new AclFileError(`${source}: unknown key "${unknown[0]}"`);
    if (given !== undefined && given !== "allow" && given !== "deny") {
      throw new AclFileError(`${source}: default: expected "allow" or "deny"`);
    }
    defaultPolicy = given as AclDefault | undefined;
    rules = list ?? [];
  }
  if (!Array.isArray(rules)) {
    throw new AclFileError(`${source}: expected a list of rules or { default, rules }`);
  }
  const out: AclRule[] = [];
  rules.forEach((item, index) => {
    const problem = ruleShapeProblem(item) ?? validateAclRule(item as AclRule);
    if (problem) throw new AclFileError(`${source}: rule ${index}: ${problem}`);
    out.push(item as AclRule);
  });
  return { rules: out, defaultPolicy };
}

const RULE_KEYS = new Set(["permission", "action", "topic", "users", "clients"]);

function ruleShapeProblem(item: unknown): string | undefined {
  if (typeof item !== "object" || item === null || Array.isArray(item)) {
    return "expected a mapping { permission, action, topic, users?, clients? }";
  }
  for (const [key, value] of Object.entries(item)) {
    if (!RULE_KEYS.has(key)) return `unknown key "${key}"`;
    if (
      (key === "users" || key === "clients") &&
      !(Array.isArray(value) && value.every((v) => typeof v === "string"))
    ) return `${key}: expected a list of strings`;
  }
  return undefined;
}
