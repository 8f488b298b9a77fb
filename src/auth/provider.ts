/**
 * The contract every authentication provider follows: look at a CONNECT and allow it, deny it, or
 * pass it on to the next provider of the chain.
 *
 * @module
 */

import type { AuthenticateRequest } from "../hooks/hooks.ts";
import type { AclRule } from "./acl.ts";

/** What a provider decided about one CONNECT. */
export type AuthDecision =
  /**
   * Accept. `username` replaces the presented one (a certificate CN, a token subject); `aclRules`,
   * when given, are this client's own rules and replace the configured ones for it.
   */
  | { outcome: "allow"; username?: string; aclRules?: readonly AclRule[] }
  /** Refuse with an MQTT 5 CONNACK reason code; `reason` goes to the log and the Reason String. */
  | { outcome: "deny"; reasonCode: number; reason: string }
  /** No opinion: the next provider decides. */
  | { outcome: "pass" };

/** One link of the authentication chain. */
export interface AuthProvider {
  /** Short name for logs, e.g. `passwordFile`. */
  readonly name: string;
  /** Decides about a CONNECT. Never throws for a bad credential: that is a `deny`. */
  authenticate(request: AuthenticateRequest): AuthDecision | Promise<AuthDecision>;
  /** Re-reads the provider's files (users, keys); resolves when the new data is in use. */
  reload?(): Promise<void>;
  /** Releases timers and caches. */
  close?(): void;
}

/** The shared `pass` decision (no allocation per CONNECT). */
export const PASS: AuthDecision = Object.freeze({ outcome: "pass" });
