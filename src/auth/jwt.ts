/**
 * JWT authentication: a token in the CONNECT password field, verified locally with `jose` against
 * an HS256 secret, an RS256/ES256 public key, or a JWKS file. `exp` and `nbf` are enforced with a
 * clock skew allowance; the user name becomes the token's subject claim; an optional ACL claim
 * becomes the client's own rules.
 *
 * A password that does not look like a JWT (three base64url parts, the first starting `eyJ`)
 * passes to the next provider, so tokens and passwords can share one chain.
 *
 * @module
 */

import {
  createLocalJWKSet,
  importSPKI,
  type JSONWebKeySet,
  type JWTPayload,
  jwtVerify,
  type JWTVerifyGetKey,
} from "jose";
import { readFile } from "node:fs/promises";
import { ReasonCode } from "../codec/reason_codes.ts";
import type { AuthenticateRequest } from "../hooks/hooks.ts";
import type { Clock } from "../util/clock.ts";
import { type AclRule, validateAclRule } from "./acl.ts";
import { type AuthDecision, type AuthProvider, PASS } from "./provider.ts";

/** Asymmetric algorithms accepted for a PEM public key. */
export type JwtPublicKeyAlgorithm = "RS256" | "ES256";

/** Options for {@linkcode JwtAuthProvider}; exactly one of `secret`, `publicKeyFile`, `jwksFile`. */
export interface JwtAuthOptions {
  /** Shared secret for HS256. */
  secret?: string;
  /** Path of a PEM (SPKI) public key. */
  publicKeyFile?: string;
  publicKeyAlgorithm?: JwtPublicKeyAlgorithm;
  /** Path of a JWKS JSON file (`{"keys": [...]}`). */
  jwksFile?: string;
  /** Required `iss`, when set. */
  issuer?: string;
  /** Required `aud`, when set. */
  audience?: string;
  /** Ms of clock difference tolerated on `exp` and `nbf`. */
  clockSkew: number;
  /** Refuse tokens without `exp`. */
  requireExpiry: boolean;
  /** Claim holding the user name. */
  usernameClaim: string;
  /** Claim holding the client's ACL, if any. */
  aclClaim: string;
  clock: Clock;
}

/** Whatever `jwtVerify` takes as its key (jose's own CryptoKey type, not the DOM one). */
type VerifyKey = Parameters<typeof jwtVerify>[1] | JWTVerifyGetKey;

const JWT_SHAPE = /^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const encoder = new TextEncoder();

/** Verifies JWTs presented as CONNECT passwords. */
export class JwtAuthProvider implements AuthProvider {
  readonly name = "jwt";
  #options: JwtAuthOptions;
  #key: VerifyKey;
  #algorithms: string[];

  private constructor(options: JwtAuthOptions, key: VerifyKey, algorithms: string[]) {
    this.#options = options;
    this.#key = key;
    this.#algorithms = algorithms;
  }

  /**
   * Reads the key material.
   *
   * @throws {TypeError} when not exactly one key source is given, or a key cannot be read
   */
  static async create(options: JwtAuthOptions): Promise<JwtAuthProvider> {
    const { key, algorithms } = await loadKey(options);
    return new JwtAuthProvider(options, key, algorithms);
  }

  async authenticate(request: AuthenticateRequest): Promise<AuthDecision> {
    if (request.password === undefined) return PASS;
    const token = new TextDecoder().decode(request.password);
    if (!JWT_SHAPE.test(token)) return PASS;
    const options = this.#options;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.#key as Parameters<typeof jwtVerify>[1], {
        algorithms: this.#algorithms,
        clockTolerance: Math.round(options.clockSkew / 1000),
        currentDate: new Date(options.clock.now()),
        issuer: options.issuer,
        audience: options.audience,
        requiredClaims: options.requireExpiry ? ["exp"] : [],
      }));
    } catch (error) {
      // jose's error codes say what failed (expired, bad signature...) without the token itself.
      const code = (error as { code?: unknown }).code;
      return denied(`Invalid token: ${typeof code === "string" ? code : "ERR_JWT_INVALID"}`);
    }
    const username = payload[options.usernameClaim];
    if (typeof username !== "string" || username === "") {
      return denied(`Invalid token: no "${options.usernameClaim}" claim`);
    }
    const claim = payload[options.aclClaim];
    if (claim === undefined) return { outcome: "allow", username };
    const aclRules = aclFromClaim(claim);
    if (aclRules === undefined) return denied(`Invalid token: bad "${options.aclClaim}" claim`);
    return { outcome: "allow", username, aclRules };
  }

  /** Re-reads the public key or JWKS file. */
  async reload(): Promise<void> {
    const { key, algorithms } = await loadKey(this.#options);
    this.#key = key;
    this.#algorithms = algorithms;
  }
}

function denied(reason: string): AuthDecision {
  return { outcome: "deny", reasonCode: ReasonCode.BadUserNameOrPassword, reason };
}

async function loadKey(
  options: JwtAuthOptions,
): Promise<{ key: VerifyKey; algorithms: string[] }> {
  const sources = [options.secret, options.publicKeyFile, options.jwksFile]
    .filter((s) => s !== undefined);
  if (sources.length !== 1) {
    throw new TypeError("Invalid JWT options: expected one of secret, publicKeyFile or jwksFile");
  }
  if (options.secret !== undefined) {
    return { key: encoder.encode(options.secret), algorithms: ["HS256"] };
  }
  if (options.publicKeyFile !== undefined) {
    const algorithm = options.publicKeyAlgorithm ?? "RS256";
    const pem = await readFile(options.publicKeyFile, "utf8");
    try {
      return { key: await importSPKI(pem, algorithm), algorithms: [algorithm] };
    } catch (error) {
      throw new TypeError(
        `Invalid JWT public key ${options.publicKeyFile}: expected a PEM public key for ${algorithm}`,
        { cause: error },
      );
    }
  }
  const text = await readFile(options.jwksFile!, "utf8");
  let jwks: JSONWebKeySet;
  try {
    jwks = JSON.parse(text);
    if (!Array.isArray(jwks.keys)) throw new TypeError('no "keys" array');
  } catch (error) {
    throw new TypeError(`Invalid JWKS file ${options.jwksFile}: expected {"keys": [...]}`, {
      cause: error,
    });
  }
  return { key: createLocalJWKSet(jwks), algorithms: ["RS256", "ES256"] };
}

/**
 * A token's ACL claim as rules: either `{ "publish": [filters], "subscribe": [filters] }` (allow
 * rules) or a list of full rules. Undefined when the claim is malformed.
 */
export function aclFromClaim(claim: unknown): AclRule[] | undefined {
  if (Array.isArray(claim)) {
    const rules = claim as AclRule[];
    const ok = rules.every((rule) =>
      typeof rule === "object" && rule !== null && validateAclRule(rule) === undefined
    );
    return ok ? rules : undefined;
  }
  if (typeof claim !== "object" || claim === null) return undefined;
  const { publish = [], subscribe = [] } = claim as { publish?: unknown; subscribe?: unknown };
  if (!Array.isArray(publish) || !Array.isArray(subscribe)) return undefined;
  const rules: AclRule[] = [];
  for (const [action, topics] of [["publish", publish], ["subscribe", subscribe]] as const) {
    for (const topic of topics) {
      const rule: AclRule = { permission: "allow", action, topic };
      if (typeof topic !== "string" || validateAclRule(rule) !== undefined) return undefined;
      rules.push(rule);
    }
  }
  return rules;
}
