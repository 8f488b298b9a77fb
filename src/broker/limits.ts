/**
 * Connection limits, checked when a connection is accepted: open connections in total and per
 * source address, and the connect rate per source address. A connection over a limit is not
 * dropped silently: it is answered at its CONNECT with a reason code saying which limit it hit.
 * Also the token bucket behind the per-client publish rate.
 *
 * @module
 */

import { ReasonCode } from "../codec/reason_codes.ts";
import { isLoopbackAddress } from "../util/address.ts";
import type { Clock } from "../util/clock.ts";

/** The limits, from `BrokerOptions`. */
export interface ConnectionLimitOptions {
  maxConnections: number;
  /** 0: no limit. */
  maxConnectionsPerAddress: number;
  /** Connects per second per address, bursts of as many; 0: no limit. */
  connectRatePerAddress: number;
  /** Loopback clients skip the per-address limits. */
  exemptLoopback: boolean;
}

/**
 * A token bucket: `rate` tokens per second, holding at most `rate` (the burst). Plain fields, no
 * allocation per call.
 */
export class TokenBucket {
  #rate: number;
  #tokens: number;
  #updatedAt: number;

  constructor(rate: number, now: number) {
    this.#rate = rate;
    this.#tokens = rate;
    this.#updatedAt = now;
  }

  /** Takes one token; false when the bucket is empty. */
  take(now: number): boolean {
    this.#refill(now);
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** True when the bucket has refilled completely (nothing to remember about this key). */
  isFull(now: number): boolean {
    this.#refill(now);
    return this.#tokens >= this.#rate;
  }

  #refill(now: number): void {
    const elapsed = now - this.#updatedAt;
    if (elapsed <= 0) return;
    this.#updatedAt = now;
    this.#tokens = Math.min(this.#rate, this.#tokens + (elapsed * this.#rate) / 1000);
  }
}

/** Addresses whose connect-rate bucket is remembered before full buckets are swept out. */
const RATE_SWEEP_AT = 10_000;

/** Counts connections by source address and decides admission. */
export class ConnectionLimits {
  #options: ConnectionLimitOptions;
  #clock: Clock;
  #open = 0;
  #perAddress = new Map<string, number>();
  #rates = new Map<string, TokenBucket>();

  constructor(options: ConnectionLimitOptions, clock: Clock) {
    this.#options = options;
    this.#clock = clock;
  }

  /** Admitted connections now open. */
  get open(): number {
    return this.#open;
  }

  /** Addresses with open connections or a remembered connect rate (bounded). */
  get trackedAddresses(): number {
    return Math.max(this.#perAddress.size, this.#rates.size);
  }

  /**
   * Decides about a new connection from `address`. Returns 0 when it is admitted (and counted;
   * call {@linkcode release} when it closes), otherwise the MQTT 5 reason code to refuse with.
   */
  admit(address: string): number {
    const options = this.#options;
    if (this.#open >= options.maxConnections) return ReasonCode.ServerBusy;
    const exempt = options.exemptLoopback && isLoopbackAddress(address);
    if (!exempt) {
      const open = this.#perAddress.get(address) ?? 0;
      if (options.maxConnectionsPerAddress > 0 && open >= options.maxConnectionsPerAddress) {
        return ReasonCode.QuotaExceeded;
      }
      if (options.connectRatePerAddress > 0 && !this.#takeRate(address)) {
        return ReasonCode.ConnectionRateExceeded;
      }
      this.#perAddress.set(address, open + 1);
    }
    this.#open++;
    return 0;
  }

  /** An admitted connection closed. */
  release(address: string): void {
    this.#open--;
    const open = this.#perAddress.get(address);
    if (open === undefined) return;
    if (open <= 1) this.#perAddress.delete(address);
    else this.#perAddress.set(address, open - 1);
  }

  #takeRate(address: string): boolean {
    const now = this.#clock.now();
    let bucket = this.#rates.get(address);
    if (bucket === undefined) {
      if (this.#rates.size >= RATE_SWEEP_AT) this.#sweep(now);
      bucket = new TokenBucket(this.#options.connectRatePerAddress, now);
      this.#rates.set(address, bucket);
    }
    return bucket.take(now);
  }

  /**
   * Forgets addresses whose bucket has refilled (they behave like new ones anyway); if a flood
   * from many addresses leaves too many, the oldest half goes, so the map stays bounded.
   */
  #sweep(now: number): void {
    for (const [address, bucket] of this.#rates) {
      if (bucket.isFull(now)) this.#rates.delete(address);
    }
    if (this.#rates.size < RATE_SWEEP_AT / 2) return;
    let excess = this.#rates.size - RATE_SWEEP_AT / 2;
    for (const address of this.#rates.keys()) {
      if (excess-- <= 0) break;
      this.#rates.delete(address);
    }
  }
}
