/**
 * The ACL rules of the rules file (`acl.file`), kept in the backbone's config store so that every
 * node checks the same rules and a change made through any node's admin API applies on all of
 * them (with the memory backbone the store is a map in this process: the same code on one node).
 *
 * The store holds one document, `acl/rules`: the ordered rule list and the file's `default`, as
 * JSON in the rules file's own shape. Every change reads the document with its revision and
 * writes it back with compare-and-set, so two nodes editing at once never lose a change (the
 * later one is made again on top of the earlier). The rules file is
 *
 * - the seed: it is stored when the store has no document yet;
 * - the export: it is rewritten on the node that made a change, after the change;
 * - an import: a change of the file itself (the file watch, SIGHUP) replaces the document. Only a
 *   file whose text differs from what this node last read or wrote is taken in, so a node whose
 *   copy of the file is merely old never undoes other nodes' changes.
 *
 * @module
 */

import type { ConfigStore } from "../backbone/backbone.ts";
import type { Logger } from "../util/logger.ts";
import { type AclDefault, type AclRule, validateAclRule } from "./acl.ts";
import { type AclDocument, type AclRuleFile, parseAclFile } from "./acl_file.ts";

/** The key of the rule document in the config store. */
export const ACL_RULES_KEY = "acl/rules";

/** Attempts at one change while other nodes keep changing the document first. */
const MAX_ATTEMPTS = 20;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A rule index outside the list; `size` is the list's length when the change was tried. */
export class RuleIndexError extends RangeError {
  override name = "RuleIndexError";
  readonly index: number;
  readonly size: number;

  constructor(index: number, size: number, last: number) {
    super(`Invalid rule index: expected 0 to ${last}, got ${index}`);
    this.index = index;
    this.size = size;
  }
}

/** The rules file's rules of every node, in the config store, with the file as seed and export. */
export class SharedAclRules {
  readonly #file: AclRuleFile;
  readonly #store: ConfigStore;
  readonly #logger: Logger;
  readonly #onChange: (document: AclDocument) => void;
  /** This node's copy of the document, kept by the watch. */
  #document: AclDocument = { rules: [], defaultPolicy: undefined };
  #unwatch: (() => void) | undefined;

  private constructor(
    file: AclRuleFile,
    store: ConfigStore,
    onChange: (document: AclDocument) => void,
    logger: Logger,
  ) {
    this.#file = file;
    this.#store = store;
    this.#onChange = onChange;
    this.#logger = logger;
  }

  /**
   * Reads the rules file, seeds the store with it when the store has no rules yet, and follows the
   * store from then on; `onChange` gets the document now and after every change.
   *
   * @throws {AclFileError} when the file cannot be read or is invalid
   */
  static async open(
    file: AclRuleFile,
    store: ConfigStore,
    onChange: (document: AclDocument) => void,
    logger: Logger,
  ): Promise<SharedAclRules> {
    const shared = new SharedAclRules(file, store, onChange, logger);
    await shared.#start();
    return shared;
  }

  async #start(): Promise<void> {
    const fromFile = await this.#file.read();
    this.#unwatch = this.#store.watch((key, value) => {
      if (key === ACL_RULES_KEY && value !== undefined) this.#apply(value);
    });
    // Seeded: the watch applied the document already.
    const seeded = await this.#store.compareAndSet(ACL_RULES_KEY, encode(fromFile), 0);
    if (seeded !== undefined) {
      this.#logger.info("ACL rules seeded into the config store from the rules file", {
        file: this.#file.path,
        rules: fromFile.rules.length,
      });
      return;
    }
    const stored = await this.#store.get(ACL_RULES_KEY);
    if (stored !== undefined) this.#apply(stored);
  }

  #apply(value: Uint8Array): void {
    let document: AclDocument;
    try {
      document = decode(value);
    } catch (error) {
      this.#logger.error("config store: the ACL rules are not valid; the rules in force stay", {
        error,
      });
      return;
    }
    this.#document = document;
    this.#onChange(document);
  }

  /** The rules file's path. */
  get path(): string {
    return this.#file.path;
  }

  /** The rules, in order (copies). */
  list(): AclRule[] {
    return this.#document.rules.map((rule) => ({ ...rule }));
  }

  /** The rules file's `default`, if it set one. */
  get defaultPolicy(): AclDefault | undefined {
    return this.#document.defaultPolicy;
  }

  /**
   * Inserts a rule at `index` (default: the end) and returns where it went.
   *
   * @throws {TypeError} for an invalid rule, {@linkcode RuleIndexError} for an index past the end
   */
  async add(rule: AclRule, index?: number): Promise<number> {
    checkRule(rule);
    return await this.#change((rules) => {
      const at = index ?? rules.length;
      if (!Number.isInteger(at) || at < 0 || at > rules.length) {
        throw new RuleIndexError(at, rules.length, rules.length);
      }
      rules.splice(at, 0, { ...rule });
      return at;
    });
  }

  /** Replaces the rule at `index`. */
  async update(index: number, rule: AclRule): Promise<void> {
    checkRule(rule);
    await this.#change((rules) => {
      checkIndex(index, rules.length);
      rules[index] = { ...rule };
    });
  }

  /** Removes the rule at `index`. */
  remove(index: number): Promise<void> {
    return this.#change((rules) => {
      checkIndex(index, rules.length);
      rules.splice(index, 1);
    });
  }

  /** Writes this node's copy of the rules to the rules file (after a change made here). */
  async export(): Promise<void> {
    await this.#file.write(this.#document);
  }

  /**
   * Replaces the stored rules with the rules file's, if the file changed since this node last read
   * or wrote it.
   *
   * @returns whether the file had changed
   * @throws {AclFileError} for a file that cannot be read or is invalid (nothing changes)
   */
  async importFile(): Promise<boolean> {
    const fromFile = await this.#file.readIfChanged();
    if (fromFile === undefined) return false;
    await this.#store.put(ACL_RULES_KEY, encode(fromFile));
    return true;
  }

  /** Stops following the store. */
  close(): void {
    this.#unwatch?.();
    this.#unwatch = undefined;
  }

  /**
   * Applies `edit` to the stored rules and writes them back if nobody wrote meanwhile, else tries
   * again on what they wrote. Once it resolves this node's rules include the change.
   */
  async #change<T>(edit: (rules: AclRule[]) => T): Promise<T> {
    for (let attempt = 1;; attempt++) {
      const current = await this.#store.entry(ACL_RULES_KEY);
      const document = current
        ? decode(current.value)
        : { rules: [], defaultPolicy: this.#document.defaultPolicy };
      const result = edit(document.rules);
      const written = await this.#store.compareAndSet(
        ACL_RULES_KEY,
        encode(document),
        current?.revision ?? 0,
      );
      if (written !== undefined) return result;
      if (attempt === MAX_ATTEMPTS) {
        throw new Error(
          `the ACL rules were changed by other nodes ${MAX_ATTEMPTS} times during this change`,
        );
      }
    }
  }
}

function encode(document: AclDocument): Uint8Array {
  return encoder.encode(JSON.stringify({
    ...(document.defaultPolicy === undefined ? {} : { default: document.defaultPolicy }),
    rules: document.rules,
  }));
}

/** @throws {AclFileError} for a document that is not a valid rule list */
function decode(value: Uint8Array): AclDocument {
  // JSON is YAML: the rules file's parser checks the document as it checks the file.
  return parseAclFile(decoder.decode(value), `config store key ${ACL_RULES_KEY}`);
}

function checkRule(rule: AclRule): void {
  const problem = validateAclRule(rule);
  if (problem) throw new TypeError(`Invalid ACL rule: ${problem}`);
}

function checkIndex(index: number, size: number): void {
  if (!Number.isInteger(index) || index < 0 || index >= size) {
    throw new RuleIndexError(index, size, size - 1);
  }
}
