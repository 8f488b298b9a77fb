/**
 * The password file: one `username:verifier` line per user (verifiers in the SCRAM-SHA-256 text
 * form of `./credentials.ts`, so the same file serves plain passwords and SCRAM), `#` comments and
 * blank lines ignored. {@linkcode PasswordFile} edits a file (add, update, remove, list, save), as
 * the `passwd` CLI does; {@linkcode PasswordFileProvider} authenticates CONNECT passwords against
 * the broker's users, which `./shared_users.ts` keeps in the backbone's config store with the file
 * as their seed and export.
 *
 * @module
 */

import { readFile } from "node:fs/promises";
import { ReasonCode } from "../codec/reason_codes.ts";
import type { AuthenticateRequest } from "../hooks/hooks.ts";
import {
  deriveScramCredentials,
  formatScramCredentials,
  parseScramCredentials,
  type ScramCredentials,
  type ScramCredentialStore,
  verifyScramPassword,
} from "./credentials.ts";
import { writeFileAtomically } from "../util/atomic_file.ts";
import { type AuthDecision, type AuthProvider, PASS } from "./provider.ts";

/** A user name the file can hold: no `:`, no line breaks, not empty, at most 65,535 bytes. */
export function validateUsername(username: string): string | undefined {
  if (username === "") return "the user name is empty";
  if (/[:\r\n]/.test(username)) return 'the user name contains ":" or a line break';
  if (new TextEncoder().encode(username).length > 65_535) return "the user name is too long";
  return undefined;
}

/** Thrown by {@linkcode PasswordFile.load} for a file that cannot be used. */
export class PasswordFileError extends Error {
  override name = "PasswordFileError";
}

/** The users of one password file, in memory, with load and save. */
export class PasswordFile implements ScramCredentialStore {
  readonly path: string;
  #users = new Map<string, ScramCredentials>();

  constructor(path: string) {
    this.path = path;
  }

  /**
   * Reads the file; a missing file is an empty user list when `allowMissing` is set.
   *
   * @throws {PasswordFileError} naming the line and what is wrong (never the line's text)
   */
  async load(options: { allowMissing?: boolean } = {}): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.path, "utf8");
    } catch (error) {
      if (options.allowMissing && (error as { code?: string }).code === "ENOENT") {
        this.#users = new Map();
        return;
      }
      throw new PasswordFileError(`Cannot read password file ${this.path}`, { cause: error });
    }
    this.#users = parsePasswordFile(text, this.path);
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
   * Adds a user or changes a user's password (in memory; {@linkcode save} writes the file).
   *
   * @returns `"added"` or `"updated"`
   * @throws {TypeError} for a user name the file cannot hold
   */
  async setPassword(
    username: string,
    password: string,
    options: { iterations?: number } = {},
  ): Promise<"added" | "updated"> {
    const invalid = validateUsername(username);
    if (invalid) throw new TypeError(`Invalid user name: ${invalid}`);
    if (password === "") throw new TypeError("Invalid password: the password is empty");
    const existed = this.#users.has(username);
    this.#users.set(username, await deriveScramCredentials(password, options));
    return existed ? "updated" : "added";
  }

  /** Removes a user (in memory). Returns whether the user existed. */
  remove(username: string): boolean {
    return this.#users.delete(username);
  }

  /** Writes the file atomically (a temporary file renamed over it), readable by its owner only. */
  async save(): Promise<void> {
    await writeFileAtomically(this.path, formatPasswordFile(this.#users), { mode: 0o600 });
  }
}

/** The text of a password file holding `users`, by name. */
export function formatPasswordFile(users: ReadonlyMap<string, ScramCredentials>): string {
  let text = "# Perch password file: username:SCRAM-SHA-256 verifier (deno task passwd)\n";
  for (const username of [...users.keys()].sort()) {
    text += `${username}:${formatScramCredentials(users.get(username)!)}\n`;
  }
  return text;
}

/**
 * Parses the text of a password file.
 *
 * @throws {PasswordFileError} naming the first bad line
 */
export function parsePasswordFile(text: string, source: string): Map<string, ScramCredentials> {
  const users = new Map<string, ScramCredentials>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "" || line.startsWith("#")) continue;
    const colon = line.indexOf(":");
    const where = `${source}:${i + 1}`;
    if (colon <= 0) throw new PasswordFileError(`${where}: expected username:verifier`);
    const username = line.slice(0, colon);
    const credentials = parseScramCredentials(line.slice(colon + 1));
    if (credentials instanceof Error) {
      throw new PasswordFileError(`${where}: ${credentials.message}`);
    }
    if (users.has(username)) throw new PasswordFileError(`${where}: user "${username}" repeated`);
    users.set(username, credentials);
  }
  return users;
}

/** The users a {@linkcode PasswordFileProvider} checks, and how it re-reads them. */
export interface PasswordUsers extends ScramCredentialStore {
  scramCredentials(username: string): ScramCredentials | undefined;
  /** Takes in a changed password file (a reload); a bad file is thrown and the users stay. */
  importFile(): Promise<unknown>;
}

/**
 * Authenticates CONNECT user name and password against the users of the password file: a known
 * user with the right password is allowed, with a wrong or missing password denied (0x86); an
 * unknown user, or a CONNECT without a user name, passes to the next provider.
 */
export class PasswordFileProvider implements AuthProvider, ScramCredentialStore {
  readonly name = "passwordFile";
  readonly users: PasswordUsers;

  constructor(users: PasswordUsers) {
    this.users = users;
  }

  async authenticate(request: AuthenticateRequest): Promise<AuthDecision> {
    const username = request.username;
    if (username === undefined) return PASS;
    const credentials = this.users.scramCredentials(username);
    if (credentials === undefined) return PASS;
    const password = request.password === undefined
      ? undefined
      : new TextDecoder().decode(request.password);
    if (password === undefined || !(await verifyScramPassword(password, credentials))) {
      return {
        outcome: "deny",
        reasonCode: ReasonCode.BadUserNameOrPassword,
        reason: "Bad user name or password",
      };
    }
    return { outcome: "allow", username };
  }

  scramCredentials(username: string): ScramCredentials | undefined {
    return this.users.scramCredentials(username);
  }

  /** Re-reads the file; on a bad file the previous users stay in use and the error is thrown. */
  async reload(): Promise<void> {
    await this.users.importFile();
  }
}
