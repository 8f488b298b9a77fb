/**
 * The server side of the SASL mechanisms Kafka clients use over SaslAuthenticate: PLAIN (RFC 4616)
 * and SCRAM-SHA-256 / SCRAM-SHA-512 (RFC 5802, RFC 7677) against a fixed user list, on Web Crypto.
 * SCRAM verifiers are derived once per user at start, with a random salt and 4096 iterations (the
 * minimum Kafka clients accept).
 *
 * @module
 */

/** The mechanisms this server offers. */
export type SaslMechanism = "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512";

export const SASL_MECHANISMS: readonly SaslMechanism[] = [
  "PLAIN",
  "SCRAM-SHA-256",
  "SCRAM-SHA-512",
];

/** One step of an exchange: the bytes to send back, and whether it ended (and how). */
export type SaslStep =
  | { state: "continue"; response: Uint8Array }
  | { state: "success"; response: Uint8Array; user: string }
  | { state: "failure"; message: string };

/** One client's authentication: fed each client message in turn. */
export interface SaslExchange {
  step(message: Uint8Array): Promise<SaslStep>;
}

const SCRAM_ITERATIONS = 4096;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

type Hash = "SHA-256" | "SHA-512";

interface ScramVerifier {
  salt: Uint8Array;
  storedKey: Uint8Array;
  serverKey: Uint8Array;
}

async function hmac(hash: Hash, key: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
  const k = await crypto.subtle.importKey(
    "raw",
    key as Uint8Array<ArrayBuffer>,
    { name: "HMAC", hash },
    false,
    ["sign"],
  );
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, data as Uint8Array<ArrayBuffer>));
}

async function digest(hash: Hash, data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest(hash, data as Uint8Array<ArrayBuffer>));
}

async function deriveVerifier(hash: Hash, password: string): Promise<ScramVerifier> {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const key = await crypto.subtle.importKey("raw", encoder.encode(password), "PBKDF2", false, [
    "deriveBits",
  ]);
  const bits = hash === "SHA-256" ? 256 : 512;
  const salted = new Uint8Array(
    await crypto.subtle.deriveBits(
      { name: "PBKDF2", hash, salt, iterations: SCRAM_ITERATIONS },
      key,
      bits,
    ),
  );
  const clientKey = await hmac(hash, salted, encoder.encode("Client Key"));
  return {
    salt,
    storedKey: await digest(hash, clientKey),
    serverKey: await hmac(hash, salted, encoder.encode("Server Key")),
  };
}

/** The configured users, ready for any offered mechanism. */
export class SaslUsers {
  readonly mechanisms: readonly SaslMechanism[];
  #passwords: Map<string, string>;
  #scram = new Map<Hash, Map<string, ScramVerifier>>();

  private constructor(users: Record<string, string>, mechanisms: readonly SaslMechanism[]) {
    this.#passwords = new Map(Object.entries(users));
    this.mechanisms = mechanisms;
  }

  static async create(
    users: Record<string, string>,
    mechanisms: readonly SaslMechanism[],
  ): Promise<SaslUsers> {
    const sasl = new SaslUsers(users, mechanisms);
    for (const mechanism of mechanisms) {
      if (mechanism === "PLAIN") continue;
      const hash = scramHash(mechanism);
      const verifiers = new Map<string, ScramVerifier>();
      for (const [user, password] of sasl.#passwords) {
        verifiers.set(user, await deriveVerifier(hash, password));
      }
      sasl.#scram.set(hash, verifiers);
    }
    return sasl;
  }

  /** Starts an exchange for an offered mechanism, or returns undefined for another one. */
  exchange(mechanism: string): SaslExchange | undefined {
    if (!this.mechanisms.includes(mechanism as SaslMechanism)) return undefined;
    if (mechanism === "PLAIN") return new PlainExchange(this.#passwords);
    const hash = scramHash(mechanism as SaslMechanism);
    return new ScramExchange(hash, this.#scram.get(hash)!);
  }
}

function scramHash(mechanism: SaslMechanism): Hash {
  return mechanism === "SCRAM-SHA-512" ? "SHA-512" : "SHA-256";
}

const FAILED = "Authentication failed: Invalid username or password";

/** PLAIN: one message, `authzid NUL authcid NUL password`; authzid empty or the same user. */
class PlainExchange implements SaslExchange {
  #passwords: Map<string, string>;

  constructor(passwords: Map<string, string>) {
    this.#passwords = passwords;
  }

  step(message: Uint8Array): Promise<SaslStep> {
    const parts = decoder.decode(message).split("\0");
    if (parts.length !== 3) {
      return Promise.resolve({ state: "failure", message: "Invalid SASL/PLAIN message" });
    }
    const [authzid, user, password] = parts;
    if ((authzid !== "" && authzid !== user) || this.#passwords.get(user) !== password) {
      return Promise.resolve({ state: "failure", message: FAILED });
    }
    return Promise.resolve({ state: "success", response: new Uint8Array(), user });
  }
}

/** SCRAM: client-first, server-first, client-final, server-final. */
class ScramExchange implements SaslExchange {
  #hash: Hash;
  #verifiers: Map<string, ScramVerifier>;
  #user = "";
  #nonce = "";
  #gs2Header = "";
  #authPrefix = "";
  #verifier: ScramVerifier | undefined;
  #round = 0;

  constructor(hash: Hash, verifiers: Map<string, ScramVerifier>) {
    this.#hash = hash;
    this.#verifiers = verifiers;
  }

  step(message: Uint8Array): Promise<SaslStep> {
    this.#round++;
    const text = decoder.decode(message);
    return this.#round === 1 ? this.#first(text) : this.#final(text);
  }

  #first(text: string): Promise<SaslStep> {
    const match = /^([ny],(?:a=[^,]*)?,)(n=[^,]*,r=[^,]+(?:,.*)?)$/s.exec(text);
    if (!match) return Promise.resolve({ state: "failure", message: "Invalid SCRAM client-first" });
    this.#gs2Header = match[1];
    const bare = match[2];
    const [name, nonce] = bare.split(",");
    this.#user = name.slice(2).replaceAll("=2C", ",").replaceAll("=3D", "=");
    this.#verifier = this.#verifiers.get(this.#user);
    // An unknown user still gets a server-first message; the proof check fails later.
    const salt = this.#verifier?.salt ?? crypto.getRandomValues(new Uint8Array(16));
    this.#nonce = nonce.slice(2) + crypto.getRandomValues(new Uint8Array(18)).toBase64();
    const serverFirst = `r=${this.#nonce},s=${salt.toBase64()},i=${SCRAM_ITERATIONS}`;
    this.#authPrefix = `${bare},${serverFirst}`;
    return Promise.resolve({ state: "continue", response: encoder.encode(serverFirst) });
  }

  async #final(text: string): Promise<SaslStep> {
    const proofAt = text.lastIndexOf(",p=");
    const withoutProof = text.slice(0, proofAt);
    const [binding, nonce] = withoutProof.split(",");
    // Kafka checks only that the nonce ends with the server's: librdkafka 2.0 sends the client
    // nonce followed by the whole combined nonce.
    if (
      this.#round !== 2 || proofAt < 0 || binding !== `c=${btoa(this.#gs2Header)}` ||
      !nonce?.startsWith("r=") || !nonce.endsWith(this.#nonce)
    ) {
      return { state: "failure", message: "Invalid SCRAM client-final" };
    }
    const verifier = this.#verifier;
    if (!verifier) return { state: "failure", message: FAILED };
    let proof: Uint8Array;
    try {
      proof = Uint8Array.fromBase64(text.slice(proofAt + 3));
    } catch {
      return { state: "failure", message: "Invalid SCRAM proof" };
    }
    const authMessage = encoder.encode(`${this.#authPrefix},${withoutProof}`);
    const signature = await hmac(this.#hash, verifier.storedKey, authMessage);
    if (proof.length !== signature.length) return { state: "failure", message: FAILED };
    const clientKey = proof.map((byte, i) => byte ^ signature[i]);
    const stored = await digest(this.#hash, clientKey);
    if (!stored.every((byte, i) => byte === verifier.storedKey[i])) {
      return { state: "failure", message: FAILED };
    }
    const serverSignature = await hmac(this.#hash, verifier.serverKey, authMessage);
    return {
      state: "success",
      response: encoder.encode(`v=${serverSignature.toBase64()}`),
      user: this.#user,
    };
  }
}
