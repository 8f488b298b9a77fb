/**
 * Millisecond time stamps that fit a small integer. An epoch-ms time (~1.7e12) does not: V8 keeps
 * such a field in a separate heap number (16 bytes, plus the field), which a connection with four
 * timestamps pays at every one of 100,000 connections. A stamp keeps the low 31 bits of the time
 * instead; the time since a stamp is right while it is under 2^31 ms (24.8 days), and a longer
 * span reads as shorter (a deadline computed from it comes late, never early).
 *
 * @module
 */

const MASK = 0x7fffffff;

/** The stamp of `now` (epoch ms, as `Clock.now()` gives). */
export function stamp(now: number): number {
  return now & MASK;
}

/** Milliseconds from `stamped` to `now` (epoch ms), for spans under 2^31 ms. */
export function msSince(now: number, stamped: number): number {
  return ((now & MASK) - stamped) & MASK;
}
