/**
 * An ACL rules file: YAML holding a list of rules, or `{ default: allow|deny, rules: [...] }`.
 * {@linkcode AclRuleFile} is the programmatic rule store (list, add, update, remove, save) that the
 * admin API uses; every change is announced so the live rule set follows it.
 *
 * @module
 */

import { parse, stringify } from "yaml";
import { type AclDefault, type AclRule, validateAclRule } from "./acl.ts";

/** Thrown for a rules file that cannot be used, naming the file and what is wrong. */
export class AclFileError extends Error {
  override name = "AclFileError";
}

/** The rules of one file. */
export class AclRuleFile {
  readonly path: string;
  #rules: AclRule[] = [];
  #default: AclDefault | undefined;
  #onChange: () => void;

  /** `onChange` runs after every successful load and every in-memory change. */
  constructor(path: string, onChange: () => void = () => {}) {
    this.path = path;
    this.#onChange = onChange;
  }

  /** The rules, in order (a copy). */
  list(): AclRule[] {
    return this.#rules.map((rule) => ({ ...rule }));
  }

  /** The file's `default`, if it sets one. */
  get defaultPolicy(): AclDefault | undefined {
    return this.#default;
  }

  /**
   * Reads the file; on any problem the previous rules stay.
   *
   * @throws {AclFileError} naming the rule and the problem
   */
  async load(): Promise<void> {
    let text: string;
    try {
      text = await Deno.readTextFile(this.path);
    } catch (error) {
      throw new AclFileError(`Cannot read ACL file ${this.path}`, { cause: error });
    }
    const { rules, defaultPolicy } = parseAclFile(text, this.path);
    this.#rules = rules;
    this.#default = defaultPolicy;
    this.#onChange();
  }

  /**
   * Inserts a rule at `index` (default: the end).
   *
   * @throws {TypeError} for an invalid rule, {@linkcode RangeError} for an index out of range
   */
  add(rule: AclRule, index = this.#rules.length): void {
    checkRule(rule);
    if (!Number.isInteger(index) || index < 0 || index > this.#rules.length) {
      throw new RangeError(`Invalid rule index: expected 0 to ${this.#rules.length}, got ${index}`);
    }
    this.#rules.splice(index, 0, { ...rule });
    this.#onChange();
  }

  /** Replaces the rule at `index`. */
  update(index: number, rule: AclRule): void {
    checkRule(rule);
    this.#checkIndex(index);
    this.#rules[index] = { ...rule };
    this.#onChange();
  }

  /** Removes the rule at `index`. */
  remove(index: number): void {
    this.#checkIndex(index);
    this.#rules.splice(index, 1);
    this.#onChange();
  }

  /** Writes the rules (and the default, if set) atomically. */
  async save(): Promise<void> {
    const body = this.#default === undefined
      ? this.#rules
      : { default: this.#default, rules: this.#rules };
    const temporary = `${this.path}.${crypto.randomUUID()}.tmp`;
    await Deno.writeTextFile(temporary, stringify(body));
    try {
      await Deno.rename(temporary, this.path);
    } catch (error) {
      await Deno.remove(temporary).catch(() => {});
      throw error;
    }
  }

  #checkIndex(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.#rules.length) {
      throw new RangeError(
        `Invalid rule index: expected 0 to ${this.#rules.length - 1}, got ${index}`,
      );
    }
  }
}

function checkRule(rule: AclRule): void {
  const problem = validateAclRule(rule);
  if (problem) throw new TypeError(`Invalid ACL rule: ${problem}`);
}

/**
 * Parses the text of a rules file.
 *
 * @throws {AclFileError} naming the first bad rule
 */
export function parseAclFile(
  text: string,
  source: string,
): { rules: AclRule[]; defaultPolicy: AclDefault | undefined } {
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
