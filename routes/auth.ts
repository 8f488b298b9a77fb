/**
 * API security: static tokens from the configuration (`x-token` or `Authorization: Bearer`),
 * short-lived JWTs issued by `POST /api/v1/login` to API users, and roles (`viewer` may only
 * read). Tokens are compared in constant time (SHA-256 digests of equal length, every configured
 * token compared). With no token and no user configured the API is open, and the composition root
 * binds it to loopback only.
 *
 * @module
 */

import type { MiddlewareHandler } from "hono";
import { sign, verify } from "hono/jwt";
import {
  type Clock,
  constantTimeEqual,
  deriveScramCredentials,
  type ScramCredentials,
  verifyScramPassword,
} from "../src/mod.ts";
import { type AdminEnv, type Principal, problem, type Role } from "./_common.ts";

/** A static token from `admin.tokens`. */
export interface ApiToken {
  token: string;
  role: Role;
  /** Shown in logs instead of the token. */
  name?: string;
}

/** A user who may log in (`admin.users`), with a SCRAM-SHA-256 verifier, never a password. */
export interface ApiUser {
  username: string;
  role: Role;
  credentials: ScramCredentials;
}

/** How callers are authenticated. */
export interface AdminAuthOptions {
  tokens: readonly ApiToken[];
  users: readonly ApiUser[];
  /** HS256 key of login tokens. */
  jwtSecret: string;
  /** Lifetime of login tokens, in ms. */
  jwtTtl: number;
  clock: Clock;
}

/** A login token as issued. */
export interface IssuedToken {
  token: string;
  /** Seconds until it expires. */
  expiresIn: number;
  role: Role;
}

const encoder = new TextEncoder();
const JWT_ALGORITHM = "HS256";
const JWT_ISSUER = "perch";

/** Checks tokens and passwords; issues login tokens. */
export class AdminAuthenticator {
  #options: AdminAuthOptions;
  #digests: Promise<{ digest: Uint8Array; entry: ApiToken }[]>;
  /** Verified against when a login names an unknown user, so that costs as much as a known one. */
  #decoy: Promise<ScramCredentials>;

  constructor(options: AdminAuthOptions) {
    this.#options = options;
    this.#digests = Promise.all(
      options.tokens.map(async (entry) => ({ digest: await digest(entry.token), entry })),
    );
    const iterations = options.users[0]?.credentials.iterations;
    this.#decoy = deriveScramCredentials(crypto.randomUUID(), iterations ? { iterations } : {});
  }

  /** True when neither tokens nor users are configured: every caller is an admin (loopback). */
  get open(): boolean {
    return this.#options.tokens.length === 0 && this.#options.users.length === 0;
  }

  /** The principal a presented token stands for, or undefined when it is not valid. */
  async authenticate(token: string): Promise<Principal | undefined> {
    const presented = await digest(token);
    let found: ApiToken | undefined;
    // Every configured token is compared, so the time taken does not tell which one matched.
    for (const { digest: expected, entry } of await this.#digests) {
      if (constantTimeEqual(presented, expected) && found === undefined) found = entry;
    }
    if (found) return { name: found.name ?? "token", role: found.role };
    if (token.split(".").length !== 3 || this.#options.users.length === 0) return undefined;
    try {
      const claims = await verify(token, this.#options.jwtSecret, JWT_ALGORITHM);
      if (claims.iss !== JWT_ISSUER || typeof claims.sub !== "string") return undefined;
      // The user's current role wins, and a removed user's token stops working.
      const user = this.#options.users.find((u) => u.username === claims.sub);
      return user && { name: user.username, role: user.role };
    } catch {
      return undefined;
    }
  }

  /** Checks a user's password; returns a login token, or undefined for wrong credentials. */
  async login(username: string, password: string): Promise<IssuedToken | undefined> {
    const user = this.#options.users.find((u) => u.username === username);
    const credentials = user?.credentials ?? await this.#decoy;
    const ok = await verifyScramPassword(password, credentials);
    if (!user || !ok) return undefined;
    const now = Math.floor(this.#options.clock.now() / 1000);
    const expiresIn = Math.max(1, Math.floor(this.#options.jwtTtl / 1000));
    const token = await sign(
      { iss: JWT_ISSUER, sub: user.username, role: user.role, iat: now, exp: now + expiresIn },
      this.#options.jwtSecret,
      JWT_ALGORITHM,
    );
    return { token, expiresIn, role: user.role };
  }
}

async function digest(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
}

/** The token a request presents: `x-token`, else `Authorization: Bearer <token>`. */
export function presentedToken(headers: Headers): string | undefined {
  const header = headers.get("x-token");
  if (header !== null && header !== "") return header;
  const authorization = headers.get("authorization");
  const match = authorization === null ? null : /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  return match ? match[1] : undefined;
}

/** Methods a `viewer` may use. */
const READ_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * The auth middleware: 401 without a valid token, 403 when a viewer writes. Paths in `publicPaths`
 * (login, the OpenAPI document) pass without a token.
 */
export function requireToken(
  authenticator: AdminAuthenticator,
  publicPaths: ReadonlySet<string>,
): MiddlewareHandler<AdminEnv> {
  return async function requireToken(c, next) {
    if (publicPaths.has(c.req.path)) return await next();
    let principal: Principal | undefined;
    if (authenticator.open) principal = { name: "anonymous", role: "admin" };
    else {
      const token = presentedToken(c.req.raw.headers);
      if (token === undefined) {
        c.header("WWW-Authenticate", 'Bearer realm="perch"');
        return problem(c, 401, "Authentication required: send x-token or Authorization: Bearer");
      }
      principal = await authenticator.authenticate(token);
      if (!principal) {
        c.header("WWW-Authenticate", 'Bearer realm="perch", error="invalid_token"');
        return problem(c, 401, "Invalid or expired token");
      }
    }
    if (principal.role === "viewer" && !READ_METHODS.has(c.req.method)) {
      return problem(c, 403, `Role "viewer" may only read: ${c.req.method} needs role "admin"`);
    }
    c.set("principal", principal);
    await next();
  };
}
