/**
 * Failed-login lock-out for `POST /api/v1/login`: after `maxFailures` failures from one client
 * address, or for one user name (known or not, so the answer tells nothing about which names
 * exist), further attempts from that address or for that name are refused with 429 for `lockout`,
 * before any password is checked. An attempt counts as a failure from the moment it starts and is
 * forgiven when it succeeds, so parallel attempts cannot get past the bound either.
 *
 * Both maps are bounded: beyond `maxEntries` the entry touched longest ago goes.
 *
 * @module
 */

import type { Clock } from "../src/mod.ts";

/** Entries kept per map (addresses, user names). */
export const MAX_THROTTLE_ENTRIES = 10_000;

interface Entry {
  failures: number;
  lastFailure: number;
  lockedUntil: number;
}

/** How logins are limited. */
export interface LoginThrottleOptions {
  /** Failures allowed before a lock-out. */
  maxFailures: number;
  /** Lock-out length, in ms; failures older than this are forgotten. */
  lockout: number;
  clock: Pick<Clock, "now">;
  /** Bound of each map; {@linkcode MAX_THROTTLE_ENTRIES} by default. */
  maxEntries?: number;
}

/** Why an attempt is refused: which key is locked and for how long. */
export interface Lockout {
  by: "address" | "username";
  /** Milliseconds until the lock-out ends. */
  retryAfter: number;
}

/** Failed-login counters per address and per user name. */
export class LoginThrottle {
  #options: LoginThrottleOptions;
  #maxEntries: number;
  #addresses = new Map<string, Entry>();
  #usernames = new Map<string, Entry>();

  constructor(options: LoginThrottleOptions) {
    this.#options = options;
    this.#maxEntries = options.maxEntries ?? MAX_THROTTLE_ENTRIES;
  }

  /** Entries held (addresses + user names). */
  get size(): number {
    return this.#addresses.size + this.#usernames.size;
  }

  /**
   * Starts an attempt: refused when the address or the user name is locked out, else counted as a
   * failure until {@linkcode succeeded} forgives it.
   */
  begin(address: string, username: string): Lockout | undefined {
    const now = this.#options.clock.now();
    const byAddress = this.#locked(this.#addresses, address, now);
    const byUsername = this.#locked(this.#usernames, username, now);
    if (byAddress > 0 || byUsername > 0) {
      return byAddress >= byUsername
        ? { by: "address", retryAfter: byAddress }
        : { by: "username", retryAfter: byUsername };
    }
    this.#fail(this.#addresses, address, now);
    this.#fail(this.#usernames, username, now);
    return undefined;
  }

  /** The attempt succeeded: the address's and the user's failures are forgotten. */
  succeeded(address: string, username: string): void {
    this.#addresses.delete(address);
    this.#usernames.delete(username);
  }

  /** Milliseconds left of a lock-out, 0 when there is none (stale entries are dropped). */
  #locked(map: Map<string, Entry>, key: string, now: number): number {
    const entry = map.get(key);
    if (!entry) return 0;
    if (entry.lockedUntil > now) return entry.lockedUntil - now;
    if (now - entry.lastFailure >= this.#options.lockout) map.delete(key);
    return 0;
  }

  #fail(map: Map<string, Entry>, key: string, now: number): void {
    const { maxFailures, lockout } = this.#options;
    let entry = map.get(key);
    if (entry) map.delete(key); // Re-inserted below: the map's order is least recently touched first.
    if (!entry || now - entry.lastFailure >= lockout) {
      entry = { failures: 0, lastFailure: now, lockedUntil: 0 };
    }
    entry.failures++;
    entry.lastFailure = now;
    if (entry.failures >= maxFailures) {
      entry.lockedUntil = now + lockout;
      entry.failures = 0;
    }
    map.set(key, entry);
    if (map.size > this.#maxEntries) map.delete(map.keys().next().value!);
  }
}
