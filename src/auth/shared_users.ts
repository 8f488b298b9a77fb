/**
 * The users of the password-file provider, kept in the backbone's config store so that every node
 * authenticates the same users and a change made through any node's admin API applies on all of
 * them (with the memory backbone the store is a map in this process: the same code on one node).
 *
 * The store holds one key per user, `auth/user/{name}`, whose value is the SCRAM-SHA-256 verifier
 * in its text form (never a password). The password file (`auth.passwordFile.path`) is
 *
 * - the seed: its users are stored when the store never had any (the key `auth/users-seeded`
 *   says it had, so users deleted through the API do not come back when a node restarts with an
 *   old file);
 * - the export: it is rewritten on the node that made a change, after the change;
 * - an import: a change of the file itself (the file watch, SIGHUP) makes the store's users the
 *   file's. Only a file whose text differs from what this node last read or wrote is taken in,
 *   so a node whose copy of the file is merely old never undoes other nodes' changes.
 *
 * @module
 */

import { readFile } from "node:fs/promises";
import type { ConfigStore } from "../backbone/backbone.ts";
import { writeFileAtomically } from "../util/atomic_file.ts";
import type { Logger } from "../util/logger.ts";
import {
  deriveScramCredentials,
  formatScramCredentials,
  parseScramCredentials,
  type ScramCredentials,
  type ScramCredentialStore,
} from "./credentials.ts";
import {
  formatPasswordFile,
  parsePasswordFile,
  PasswordFileError,
  type PasswordUsers,
  validateUsername,
} from "./password_file.ts";

/** Prefix of the users' keys in the config store. */
export const USER_KEY_PREFIX = "auth/user/";
/** Present once the store was seeded with the users of a password file. */
export const USERS_SEEDED_KEY = "auth/users-seeded";

/** Attempts at one password change while other nodes keep changing the same user first. */
const MAX_ATTEMPTS = 20;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The users of every node, in the config store, with the password file as seed and export. */
export class SharedUsers implements ScramCredentialStore, PasswordUsers {
  /** The password file. */
  readonly path: string;
  readonly #store: ConfigStore;
  readonly #logger: Logger;
  /** This node's copy of the store's users, kept by the watch. */
  readonly #users = new Map<string, ScramCredentials>();
  /** The file's text as this node last read or wrote it. */
  #fileText: string | undefined;
  #unwatch: (() => void) | undefined;

  private constructor(path: string, store: ConfigStore, logger: Logger) {
    this.path = path;
    this.#store = store;
    this.#logger = logger;
  }

  /**
   * Reads the password file, seeds the store with it when the store never had users, and follows
   * the store from then on.
   *
   * @throws {PasswordFileError} when the file cannot be read or is invalid
   */
  static async open(path: string, store: ConfigStore, logger: Logger): Promise<SharedUsers> {
    const shared = new SharedUsers(path, store, logger);
    await shared.#start();
    return shared;
  }

  async #start(): Promise<void> {
    const text = await this.#readFile();
    const fromFile = parsePasswordFile(text, this.path);
    this.#fileText = text;
    this.#unwatch = this.#store.watch((key, value) => {
      if (key.startsWith(USER_KEY_PREFIX)) this.#apply(key.slice(USER_KEY_PREFIX.length), value);
    });
    if (await this.#store.get(USERS_SEEDED_KEY) === undefined) {
      // Users first, the mark last: a node that stops half way seeds again at its next start.
      for (const [username, credentials] of fromFile) {
        await this.#store.compareAndSet(userKey(username), encodeCredentials(credentials), 0);
      }
      await this.#store.put(USERS_SEEDED_KEY, encoder.encode(new Date().toISOString()));
      this.#logger.info("users seeded into the config store from the password file", {
        file: this.path,
        users: fromFile.size,
      });
    }
    for (const { key, value } of await this.#store.list(USER_KEY_PREFIX)) {
      this.#apply(key.slice(USER_KEY_PREFIX.length), value);
    }
  }

  #apply(username: string, value: Uint8Array | undefined): void {
    if (value === undefined) {
      this.#users.delete(username);
      return;
    }
    const credentials = parseScramCredentials(decoder.decode(value));
    if (credentials instanceof Error) {
      this.#logger.error("config store: a user's verifier is not valid; the user is ignored", {
        username,
        error: credentials.message,
      });
      this.#users.delete(username);
      return;
    }
    this.#users.set(username, credentials);
  }

  async #readFile(): Promise<string> {
    try {
      return await readFile(this.path, "utf8");
    } catch (error) {
      throw new PasswordFileError(`Cannot read password file ${this.path}`, { cause: error });
    }
  }

  /** User names, sorted. */
  list(): string[] {
    return [...this.#users.keys()].sort();
  }

  has(username: string): boolean {
    return this.#users.has(username);
  }

  scramCredentials(username: string): ScramCredentials | undefined {
    return this.#users.get(username);
  }

  /**
   * Adds a user unless one of that name exists on any node.
   *
   * @returns `"added"` or `"exists"`
   * @throws {TypeError} for a user name the file cannot hold or an empty password
   */
  async add(username: string, password: string): Promise<"added" | "exists"> {
    const credentials = await derive(username, password);
    const written = await this.#store.compareAndSet(
      userKey(username),
      encodeCredentials(credentials),
      0,
    );
    return written === undefined ? "exists" : "added";
  }

  /**
   * Changes the password of an existing user (one removed meanwhile on another node stays
   * removed).
   *
   * @returns `"updated"` or `"missing"`
   */
  async changePassword(username: string, password: string): Promise<"updated" | "missing"> {
    const credentials = await derive(username, password);
    const key = userKey(username);
    for (let attempt = 1;; attempt++) {
      const current = await this.#store.entry(key);
      if (current === undefined) return "missing";
      const written = await this.#store.compareAndSet(
        key,
        encodeCredentials(credentials),
        current.revision,
      );
      if (written !== undefined) return "updated";
      if (attempt === MAX_ATTEMPTS) {
        throw new Error(`user "${username}" was changed by other nodes ${MAX_ATTEMPTS} times`);
      }
    }
  }

  /** Removes a user; false when there was none. */
  async remove(username: string): Promise<boolean> {
    const key = userKey(username);
    if (await this.#store.entry(key) === undefined) return false;
    await this.#store.delete(key);
    return true;
  }

  /** Writes this node's copy of the users to the password file (after a change made here). */
  async export(): Promise<void> {
    const text = formatPasswordFile(this.#users);
    await writeFileAtomically(this.path, text, { mode: 0o600 });
    this.#fileText = text;
  }

  /**
   * Makes the store's users those of the password file, if the file changed since this node last
   * read or wrote it.
   *
   * @returns whether the file had changed
   * @throws {PasswordFileError} for a file that cannot be read or is invalid (nothing changes)
   */
  async importFile(): Promise<boolean> {
    const text = await this.#readFile();
    if (text === this.#fileText) return false;
    const fromFile = parsePasswordFile(text, this.path);
    for (const username of this.list()) {
      if (!fromFile.has(username)) await this.#store.delete(userKey(username));
    }
    for (const [username, credentials] of fromFile) {
      const encoded = formatScramCredentials(credentials);
      const known = this.#users.get(username);
      if (known === undefined || formatScramCredentials(known) !== encoded) {
        await this.#store.put(userKey(username), encoder.encode(encoded));
      }
    }
    this.#fileText = text;
    return true;
  }

  /** Stops following the store. */
  close(): void {
    this.#unwatch?.();
    this.#unwatch = undefined;
  }
}

function userKey(username: string): string {
  return USER_KEY_PREFIX + username;
}

function encodeCredentials(credentials: ScramCredentials): Uint8Array {
  return encoder.encode(formatScramCredentials(credentials));
}

async function derive(username: string, password: string): Promise<ScramCredentials> {
  const invalid = validateUsername(username);
  if (invalid) throw new TypeError(`Invalid user name: ${invalid}`);
  if (password === "") throw new TypeError("Invalid password: the password is empty");
  return await deriveScramCredentials(password);
}
