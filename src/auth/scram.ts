/**
 * The `SCRAM-SHA-256` enhanced-authentication method (RFC 5802, RFC 7677) over MQTT 5 AUTH
 * packets: the CONNECT carries the client-first message, AUTH 0x18 carries server-first, the
 * client's AUTH 0x18 carries client-final, and the CONNACK (or AUTH 0x00 on re-authentication)
 * carries server-final (`v=<ServerSignature>`), so the client can check the server too. Channel
 * binding is not offered (`n,,` only). Web Crypto only.
 *
 * @module
 */

import { ReasonCode } from "../codec/reason_codes.ts";
import type { ClientInfo } from "../hooks/hooks.ts";
import {
  constantTimeEqual,
  decodeBase64,
  DEFAULT_SCRAM_ITERATIONS,
  hmacSha256,
  type ScramCredentials,
  type ScramCredentialStore,
  sha256,
} from "./credentials.ts";
import type { AuthStep, EnhancedAuthenticator, EnhancedAuthMethod } from "./enhanced.ts";

/** The Authentication Method name clients send. */
export const SCRAM_SHA_256 = "SCRAM-SHA-256";

/** Longest SCRAM message accepted (a user name, a nonce and a proof fit easily). */
const MAX_MESSAGE_BYTES = 4096;
/** Random bytes the server adds to the client's nonce. */
const SERVER_NONCE_BYTES = 18;

/** What the SCRAM method needs. */
export interface ScramMethodOptions {
  /** Where users' verifiers come from. */
  store: ScramCredentialStore;
  /** Source of the server nonce part (printable, no comma); random by default. Tests fix it. */
  serverNonce?: () => string;
}

const decoder = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

/**
 * Builds the `SCRAM-SHA-256` method. An unknown user gets a made-up salt derived from a per-method
 * secret (and the default iteration count), so the exchange looks the same as for a known user
 * until the proof fails.
 *
 * @example Offer SCRAM-SHA-256 to MQTT 5 clients
 * ```ts
 * import { deriveScramCredentials } from "./credentials.ts";
 * import { createScramMethod, SCRAM_SHA_256 } from "./scram.ts";
 *
 * const alice = await deriveScramCredentials("wonderland");
 * const scram = createScramMethod({
 *   store: { scramCredentials: (user) => user === "alice" ? alice : undefined },
 * });
 * const authMethods = new Map([[SCRAM_SHA_256, scram]]); // BrokerDeps.authMethods
 * ```
 */
export function createScramMethod(options: ScramMethodOptions): EnhancedAuthMethod {
  const decoySecret = crypto.getRandomValues(new Uint8Array(32));
  const serverNonce = options.serverNonce ??
    (() => crypto.getRandomValues(new Uint8Array(SERVER_NONCE_BYTES)).toBase64());
  return () => new ScramExchange(options.store, decoySecret, serverNonce);
}

function failure(reasonCode: number, reason: string): AuthStep {
  return { kind: "failure", reasonCode, reason };
}

function malformed(detail: string): AuthStep {
  return failure(ReasonCode.NotAuthorized, `Invalid SCRAM message: ${detail}`);
}

/** One SCRAM exchange: client-first -> server-first -> client-final -> server-final. */
class ScramExchange implements EnhancedAuthenticator {
  #store: ScramCredentialStore;
  #decoySecret: Uint8Array;
  #serverNonce: () => string;
  #username = "";
  #credentials: ScramCredentials | undefined = undefined;
  #gs2Header = "";
  #nonce = "";
  /** client-first-message-bare "," server-first-message: the start of the AuthMessage. */
  #authPrefix = "";
  #done = false;

  constructor(store: ScramCredentialStore, decoySecret: Uint8Array, serverNonce: () => string) {
    this.#store = store;
    this.#decoySecret = decoySecret;
    this.#serverNonce = serverNonce;
  }

  async start(initialData: Uint8Array | undefined, _client: ClientInfo): Promise<AuthStep> {
    const message = readMessage(initialData);
    if (message === undefined) return malformed("client-first-message is missing or not UTF-8");
    // gs2-header: n,, (no channel binding, no authorization identity).
    const match = /^([ny]),(a=[^,]*)?,(.*)$/s.exec(message);
    if (!match) {
      if (message.startsWith("p=")) {
        return failure(ReasonCode.NotAuthorized, "SCRAM channel binding is not supported");
      }
      return malformed("client-first-message has no gs2 header");
    }
    if (match[2] !== undefined) {
      return failure(ReasonCode.NotAuthorized, "SCRAM authorization identities are not supported");
    }
    this.#gs2Header = `${match[1]},,`;
    const bare = match[3];
    const fields = bare.split(",");
    if (fields[0]?.startsWith("m=")) return malformed("mandatory extensions are not supported");
    if (!fields[0]?.startsWith("n=") || !fields[1]?.startsWith("r=")) {
      return malformed("client-first-message needs n= and r=");
    }
    const username = decodeSaslName(fields[0].slice(2));
    const clientNonce = fields[1].slice(2);
    if (username === undefined || username === "") return malformed("invalid user name");
    if (!isPrintableNonce(clientNonce)) return malformed("invalid client nonce");
    this.#username = username;
    this.#credentials = await this.#store.scramCredentials(username);
    const { salt, iterations } = this.#credentials ?? await this.#decoy(username);
    this.#nonce = clientNonce + this.#serverNonce();
    const serverFirst = `r=${this.#nonce},s=${salt.toBase64()},i=${iterations}`;
    this.#authPrefix = `${bare},${serverFirst}`;
    return { kind: "continue", data: encoder.encode(serverFirst) };
  }

  async continue(data: Uint8Array | undefined): Promise<AuthStep> {
    if (this.#nonce === "" || this.#done) return malformed("unexpected message");
    this.#done = true;
    const message = readMessage(data);
    if (message === undefined) return malformed("client-final-message is missing or not UTF-8");
    const proofAt = message.lastIndexOf(",p=");
    if (proofAt < 0) return malformed("client-final-message has no proof");
    const withoutProof = message.slice(0, proofAt);
    const fields = withoutProof.split(",");
    if (!fields[0]?.startsWith("c=") || !fields[1]?.startsWith("r=")) {
      return malformed("client-final-message needs c= and r=");
    }
    const binding = decodeBase64(fields[0].slice(2));
    if (!binding || new TextDecoder().decode(binding) !== this.#gs2Header) {
      return malformed("channel binding does not match the gs2 header");
    }
    if (fields[1].slice(2) !== this.#nonce) return malformed("nonce does not match");
    const proof = decodeBase64(message.slice(proofAt + 3));
    if (!proof || proof.length !== 32) return malformed("proof is not 32 bytes of base64");

    const credentials = this.#credentials;
    const authMessage = encoder.encode(`${this.#authPrefix},${withoutProof}`);
    if (!credentials) {
      return failure(ReasonCode.BadUserNameOrPassword, "Bad user name or password");
    }
    const clientSignature = await hmacSha256(credentials.storedKey, authMessage);
    const clientKey = proof.map((byte, i) => byte ^ clientSignature[i]);
    if (!constantTimeEqual(await sha256(clientKey), credentials.storedKey)) {
      return failure(ReasonCode.BadUserNameOrPassword, "Bad user name or password");
    }
    const serverSignature = await hmacSha256(credentials.serverKey, authMessage);
    return {
      kind: "success",
      data: encoder.encode(`v=${serverSignature.toBase64()}`),
      username: this.#username,
    };
  }

  /** A stable made-up salt for an unknown user, so its exchange looks like a real one. */
  async #decoy(username: string): Promise<{ salt: Uint8Array; iterations: number }> {
    const salt = (await hmacSha256(this.#decoySecret, encoder.encode(username))).slice(0, 16);
    return { salt, iterations: DEFAULT_SCRAM_ITERATIONS };
  }
}

function readMessage(data: Uint8Array | undefined): string | undefined {
  if (!data || data.length === 0 || data.length > MAX_MESSAGE_BYTES) return undefined;
  try {
    return decoder.decode(data);
  } catch {
    return undefined;
  }
}

/** saslname: "=2C" is ",", "=3D" is "=", any other "=" is invalid (RFC 5802 section 5.1). */
function decodeSaslName(text: string): string | undefined {
  if (/=(?!2C|3D)/.test(text)) return undefined;
  return text.replaceAll("=2C", ",").replaceAll("=3D", "=");
}

/** printable = %x21-2B / %x2D-7E (no comma). */
function isPrintableNonce(nonce: string): boolean {
  return /^[\x21-\x2B\x2D-\x7E]+$/.test(nonce);
}
