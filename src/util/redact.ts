/**
 * Which names hold secrets, shared by the logger and the config error messages so a secret never
 * reaches a log line or a terminal.
 *
 * @module
 */

/** What is printed in place of a secret value. */
export const REDACTED = "[redacted]";

const SECRET_SUFFIXES = ["password", "passphrase", "token", "secret", "authorization", "jwt"];

/**
 * Tells whether a field or key name holds a secret: its name, ignoring case, `_` and `-`, is or ends
 * with `password`, `passphrase`, `token`, `secret`, `authorization` or `jwt` (so `apiToken`,
 * `client_secret` and `Proxy-Authorization` count too).
 *
 * @param name A field or key name
 * @returns `true` when the value must be printed as {@linkcode REDACTED}
 */
export function isSecretKey(name: string): boolean {
  const normalized = name.toLowerCase().replace(/[-_]/g, "");
  return SECRET_SUFFIXES.some((suffix) => normalized.endsWith(suffix));
}
