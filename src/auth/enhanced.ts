/**
 * MQTT 5 enhanced authentication (section 4.12): the interface a challenge/response method
 * implements. The broker drives the AUTH packet exchange; a method only turns the client's
 * authentication data into the next step. One {@linkcode EnhancedAuthenticator} serves one exchange
 * (the CONNECT one, or one re-authentication), so it may keep state between steps.
 *
 * @module
 */

import type { ClientInfo } from "../hooks/hooks.ts";

/** What an authenticator decided after a message from the client. */
export type AuthStep =
  /** Send `data` to the client in AUTH 0x18 (Continue authentication) and wait for its answer. */
  | { kind: "continue"; data: Uint8Array | undefined }
  /**
   * Authenticated: `data` (if any) goes to the client in the CONNACK or AUTH 0x00; `username`
   * becomes the client's user name.
   */
  | { kind: "success"; data: Uint8Array | undefined; username: string | undefined }
  /** Refused: CONNACK (or, on re-authentication, DISCONNECT) with `reasonCode` (0x87 by default). */
  | { kind: "failure"; reasonCode: number | undefined; reason: string };

/** One authentication exchange of one method. */
export interface EnhancedAuthenticator {
  /**
   * Starts the exchange with the Authentication Data of the CONNECT (or of the AUTH 0x19 that asks
   * for re-authentication).
   */
  start(initialData: Uint8Array | undefined, client: ClientInfo): AuthStep | Promise<AuthStep>;
  /** Takes the Authentication Data of the client's next AUTH 0x18. */
  continue(data: Uint8Array | undefined): AuthStep | Promise<AuthStep>;
}

/** Makes a fresh authenticator for each exchange. */
export type EnhancedAuthMethod = () => EnhancedAuthenticator;

/** Authentication Method names (e.g. `SCRAM-SHA-256`) and their implementations. */
export type EnhancedAuthMethods = ReadonlyMap<string, EnhancedAuthMethod>;
