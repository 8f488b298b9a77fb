/**
 * SCRAM-SHA-256 verifiers (RFC 5802, RFC 7677): the one credential format shared by plain CONNECT
 * passwords (the password file) and SCRAM enhanced authentication. A verifier never holds the
 * password; it holds what a server needs to check a SCRAM proof, and from which a plain password can
 * be checked too. Web Crypto only.
 *
 * @module
 */

/** A user's SCRAM-SHA-256 verifier (RFC 5802/7677): never the password itself. */
export interface ScramCredentials {
  salt: Uint8Array;
  iterations: number;
  /** H(HMAC(SaltedPassword, "Client Key")). */
  storedKey: Uint8Array;
  /** HMAC(SaltedPassword, "Server Key"). */
  serverKey: Uint8Array;
}

/** Looks up a user's verifier; undefined when the user is unknown. */
export interface ScramCredentialStore {
  scramCredentials(
    username: string,
  ): ScramCredentials | undefined | Promise<ScramCredentials | undefined>;
}

/** Fewest PBKDF2 iterations accepted (RFC 7677 section 4). */
export const MIN_SCRAM_ITERATIONS = 4096;
/** PBKDF2 iterations of a new verifier when none are given. */
export const DEFAULT_SCRAM_ITERATIONS = 100_000;
/** Bytes of random salt in a new verifier. */
const SALT_BYTES = 16;
/** Largest iteration count parsed from text, so a hostile file cannot stall the broker. */
const MAX_SCRAM_ITERATIONS = 10_000_000;
const PREFIX = "SCRAM-SHA-256$";
const SHA256_BYTES = 32;

const encoder = new TextEncoder();

/**
 * Derives a verifier from a password with PBKDF2-SHA256.
 *
 * @param password The password; normalized with NFKC (a close stand-in for SASLprep, RFC 4013).
 * @param options `salt` (random 16 bytes by default) and `iterations` (default 100000, at least 4096).
 * @returns The verifier.
 * @throws {RangeError} When `iterations` is below 4096 or not an integer.
 */
export async function deriveScramCredentials(
  password: string,
  options: { salt?: Uint8Array; iterations?: number } = {},
): Promise<ScramCredentials> {
  const iterations = options.iterations ?? DEFAULT_SCRAM_ITERATIONS;
  if (!Number.isInteger(iterations) || iterations < MIN_SCRAM_ITERATIONS) {
    throw new RangeError(
      `Cannot derive SCRAM credentials: iterations must be an integer of at least ${MIN_SCRAM_ITERATIONS}, got ${iterations}`,
    );
  }
  const salt = options.salt ?? crypto.getRandomValues(new Uint8Array(SALT_BYTES));
  const salted = await saltedPassword(password, salt, iterations);
  const keys = await keysFromSaltedPassword(salted);
  return { salt: salt.slice(), iterations, storedKey: keys.storedKey, serverKey: keys.serverKey };
}

/**
 * Checks a plain password against a verifier: recomputes SaltedPassword -> ClientKey -> StoredKey
 * and compares in constant time.
 */
export async function verifyScramPassword(
  password: string,
  credentials: ScramCredentials,
): Promise<boolean> {
  const salted = await saltedPassword(password, credentials.salt, credentials.iterations);
  const { storedKey } = await keysFromSaltedPassword(salted);
  return constantTimeEqual(storedKey, credentials.storedKey);
}

/** Encodes the PostgreSQL-style text form `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`. */
export function formatScramCredentials(c: ScramCredentials): string {
  return `${PREFIX}${c.iterations}:${c.salt.toBase64()}$${c.storedKey.toBase64()}:${c.serverKey.toBase64()}`;
}

/** Decodes the text form of {@linkcode formatScramCredentials}; an `Error` says what is wrong. */
export function parseScramCredentials(text: string): ScramCredentials | Error {
  const invalid = (detail: string) => new Error(`Invalid SCRAM-SHA-256 verifier: ${detail}`);
  if (!text.startsWith(PREFIX)) return invalid(`expected it to start with "${PREFIX}"`);
  const parts = text.slice(PREFIX.length).split("$");
  if (parts.length !== 2) return invalid("expected <iterations>:<salt>$<StoredKey>:<ServerKey>");
  const [params, keys] = parts.map((p) => p.split(":"));
  if (params.length !== 2 || keys.length !== 2) {
    return invalid("expected <iterations>:<salt>$<StoredKey>:<ServerKey>");
  }
  if (!/^\d+$/.test(params[0])) return invalid(`iterations "${params[0]}" is not a number`);
  const iterations = Number(params[0]);
  if (iterations < MIN_SCRAM_ITERATIONS || iterations > MAX_SCRAM_ITERATIONS) {
    return invalid(
      `iterations must be from ${MIN_SCRAM_ITERATIONS} to ${MAX_SCRAM_ITERATIONS}, got ${iterations}`,
    );
  }
  const salt = decodeBase64(params[1]);
  const storedKey = decodeBase64(keys[0]);
  const serverKey = decodeBase64(keys[1]);
  if (!salt || salt.length === 0) return invalid("the salt is not base64");
  if (!storedKey || storedKey.length !== SHA256_BYTES) {
    return invalid("StoredKey is not 32 bytes of base64");
  }
  if (!serverKey || serverKey.length !== SHA256_BYTES) {
    return invalid("ServerKey is not 32 bytes of base64");
  }
  return { salt, iterations, storedKey, serverKey };
}

// ---- primitives shared with the SCRAM mechanism ----------------------------------------------

/** SaltedPassword := Hi(Normalize(password), salt, i), Hi being PBKDF2-HMAC-SHA-256. */
export async function saltedPassword(
  password: string,
  salt: Uint8Array,
  iterations: number,
): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(password.normalize("NFKC")),
    "PBKDF2",
    false,
    ["deriveBits"],
  );
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt: salt as Uint8Array<ArrayBuffer>, iterations },
    key,
    SHA256_BYTES * 8,
  );
  return new Uint8Array(bits);
}

/** ClientKey, StoredKey and ServerKey from a SaltedPassword (RFC 5802 section 3). */
export async function keysFromSaltedPassword(
  salted: Uint8Array,
): Promise<{ clientKey: Uint8Array; storedKey: Uint8Array; serverKey: Uint8Array }> {
  const clientKey = await hmacSha256(salted, encoder.encode("Client Key"));
  const storedKey = await sha256(clientKey);
  const serverKey = await hmacSha256(salted, encoder.encode("Server Key"));
  return { clientKey, storedKey, serverKey };
}

/** HMAC-SHA-256 of `data` under `key`. */
export async function hmacSha256(key: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
  const cryptoKey = await crypto.subtle.importKey(
    "raw",
    key as Uint8Array<ArrayBuffer>,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(
    await crypto.subtle.sign("HMAC", cryptoKey, data as Uint8Array<ArrayBuffer>),
  );
}

/** SHA-256 digest. */
export async function sha256(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>));
}

/** Compares two byte strings in time that depends only on their lengths. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a[i] ^ b[i];
  return difference === 0;
}

/** Strict base64 (with padding); undefined when `text` is not base64. */
export function decodeBase64(text: string): Uint8Array | undefined {
  try {
    return Uint8Array.fromBase64(text, { lastChunkHandling: "strict" });
  } catch {
    return undefined;
  }
}
