/**
 * How a backbone operation fails. Implementations reject with a {@linkcode BackboneError} whose
 * `failure` tells the engine what to answer: a store at its bound is the client's problem (0x97),
 * anything else is the server's (0x80, 0x83 or 0x88).
 *
 * @module
 */

/** Why a backbone operation failed. */
export type BackboneFailure =
  /** The backing service cannot be reached or refused the operation. */
  | "unavailable"
  /** No answer within the operation's time bound. */
  | "timeout"
  /** A store is at its configured bound (the retained store, a queue). */
  | "full";

/** A failed backbone operation. */
export class BackboneError extends Error {
  readonly failure: BackboneFailure;

  constructor(failure: BackboneFailure, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "BackboneError";
    this.failure = failure;
  }
}

/** The failure kind of any error a backbone call rejected with ("unavailable" for the unknown). */
export function failureOf(error: unknown): BackboneFailure {
  return error instanceof BackboneError ? error.failure : "unavailable";
}
