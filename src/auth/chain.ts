/**
 * The authentication chain: providers asked in configured order, the first `allow` or `deny`
 * decides. When every provider passes, the client is anonymous, and the anonymous policy decides.
 *
 * @module
 */

import { ReasonCode } from "../codec/reason_codes.ts";
import type { AuthenticateRequest, AuthResult } from "../hooks/hooks.ts";
import type { Logger } from "../util/logger.ts";
import { isLoopbackAddress } from "../util/address.ts";
import type { AuthDecision, AuthProvider } from "./provider.ts";

/**
 * Who may connect without credentials any provider accepted: `never`, `loopback` (clients on
 * this machine only), or `always`.
 */
export type AnonymousPolicy = "never" | "loopback" | "always";

/** Options for {@linkcode AuthChain}. */
export interface AuthChainOptions {
  providers: readonly AuthProvider[];
  anonymous: AnonymousPolicy;
  logger: Logger;
}

/** Runs the providers for each CONNECT and turns the outcome into the broker's `AuthResult`. */
export class AuthChain {
  readonly providers: readonly AuthProvider[];
  readonly anonymous: AnonymousPolicy;
  #logger: Logger;

  constructor(options: AuthChainOptions) {
    this.providers = options.providers;
    this.anonymous = options.anonymous;
    this.#logger = options.logger;
  }

  /** Decides about one CONNECT; the broker's `authenticate` hook. */
  async authenticate(request: AuthenticateRequest): Promise<AuthResult> {
    for (const provider of this.providers) {
      let decision: AuthDecision;
      try {
        decision = await provider.authenticate(request);
      } catch (error) {
        // A provider bug must not let a client in; the error text never holds the credentials.
        this.#logger.error("authentication provider failed", {
          provider: provider.name,
          clientId: request.clientId,
          error,
        });
        return {
          ok: false,
          reasonCode: ReasonCode.ServerUnavailable,
          reason: "Server unavailable",
        };
      }
      if (decision.outcome === "pass") continue;
      if (decision.outcome === "deny") {
        this.#logger.info("authentication denied", {
          provider: provider.name,
          clientId: request.clientId,
          username: request.username,
          remote: request.remoteAddress,
          reason: decision.reason,
        });
        return { ok: false, reasonCode: decision.reasonCode, reason: decision.reason };
      }
      return {
        ok: true,
        username: decision.username,
        context: decision.aclRules === undefined ? undefined : { aclRules: decision.aclRules },
      };
    }
    return this.#anonymous(request);
  }

  /** Re-reads every provider's files. */
  async reload(): Promise<void> {
    for (const provider of this.providers) await provider.reload?.();
  }

  close(): void {
    for (const provider of this.providers) provider.close?.();
  }

  #anonymous(request: AuthenticateRequest): AuthResult {
    const presented = request.username !== undefined || request.password !== undefined;
    if (presented && this.providers.length > 0) {
      // Credentials that no provider recognises are wrong credentials, not an anonymous login.
      return {
        ok: false,
        reasonCode: ReasonCode.BadUserNameOrPassword,
        reason: "Bad user name or password",
      };
    }
    const allowed = this.anonymous === "always" ||
      (this.anonymous === "loopback" && isLoopbackAddress(request.remoteAddress));
    if (allowed) return { ok: true };
    return {
      ok: false,
      reasonCode: presented ? ReasonCode.BadUserNameOrPassword : ReasonCode.NotAuthorized,
      reason: this.anonymous === "loopback"
        ? "Anonymous access is allowed only from this machine"
        : "Anonymous access is not allowed",
    };
  }
}
