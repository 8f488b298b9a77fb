/**
 * Which names hold secrets, shared by the logger and the config error messages so a secret never
 * reaches a log line or a terminal.
 *
 * @module
 */

/** What is printed in place of a secret value. */
export const REDACTED = "[redacted]";

const SECRET_SUFFIXES = [
  "password",
  "passphrase",
  "token",
  "secret",
  "authorization",
  "jwt",
  "credentials",
  "verifier",
];

/**
 * Tells whether a field or key name holds a secret: its name, ignoring case, `_` and `-`, is or ends
 * with `password`, `passphrase`, `token`, `secret`, `authorization`, `jwt`, `credentials` or
 * `verifier` (so `apiToken`, `client_secret` and `Proxy-Authorization` count too).
 *
 * @param name A field or key name
 * @returns `true` when the value must be printed as {@linkcode REDACTED}
 */
export function isSecretKey(name: string): boolean {
  let secret = KNOWN_KEYS.get(name);
  if (secret === undefined) {
    const normalized = name.toLowerCase().replace(/[-_]/g, "");
    secret = SECRET_SUFFIXES.some((suffix) => normalized.endsWith(suffix));
    if (KNOWN_KEYS.size < MAX_KNOWN_KEYS) KNOWN_KEYS.set(name, secret);
  }
  return secret;
}

/**
 * Names already judged: the log's field names are few and come back with every entry. Bounded,
 * because nested keys (a client's user properties) come from outside.
 */
const KNOWN_KEYS = new Map<string, boolean>();
const MAX_KNOWN_KEYS = 512;

/** A JSON Web Token: three base64url parts, the header starting `eyJ` (`{"`). */
const JWT_TEXT = /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g;
/** User information in a URL: `scheme://user:password@`. */
const URL_USERINFO = /([a-z][a-z0-9+.-]*:\/\/)[^\s/@:]*:[^\s/@]*@/gi;
/** A SCRAM verifier as the password file writes it. */
const SCRAM_VERIFIER = /SCRAM-SHA-256\$[0-9]+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+/g;

/**
 * Masks secrets that show up inside free text (an error message, a URL), whatever field holds
 * them: JWTs, the password in a URL's user information, and SCRAM verifiers.
 *
 * @param text Any text about to be logged
 * @returns The text with each secret replaced by {@linkcode REDACTED}
 */
export function redactText(text: string): string {
  if (!text.includes("eyJ") && !text.includes("@") && !text.includes("SCRAM-SHA-256$")) {
    return text;
  }
  return text
    .replace(JWT_TEXT, REDACTED)
    .replace(URL_USERINFO, `$1${REDACTED}@`)
    .replace(SCRAM_VERIFIER, REDACTED);
}
