/**
 * Turns the subscribers' sequence reports into loss, duplicate and order counts. A delivery group is a
 * set of subscribers that together must receive every published message exactly once: one plain
 * subscriber, or all members of one shared subscription.
 *
 * @module
 */

import type { SequenceReport } from "./sequence_tracker.ts";

/** Delivery integrity of one measurement. Nothing here is ever dropped from the results. */
export interface Integrity {
  /** Messages the publishers wrote (all of them, not only in the measuring window). */
  published: number;
  /** Deliveries expected: published x delivery groups. */
  expected: number;
  /** Deliveries received, duplicates included. */
  delivered: number;
  /** Expected deliveries that never arrived. */
  lost: number;
  /** Deliveries of a message the group had already received. */
  duplicated: number;
  /** Deliveries that arrived after a later message of the same publisher (per subscriber). */
  outOfOrder: number;
  /** QoS 1/2 publishes the broker had not acknowledged (or completed) when the run ended. */
  unacked: number;
}

const POPCOUNT = Uint8Array.from({ length: 256 }, (_, byte) => {
  let count = 0;
  for (let bits = byte; bits !== 0; bits &= bits - 1) count++;
  return count;
});

function countBits(bytes: Uint8Array): number {
  let count = 0;
  for (const byte of bytes) count += POPCOUNT[byte];
  return count;
}

/** What the sequence reports are checked against. */
export interface IntegrityOptions {
  /** Subscriber indices per delivery group. */
  groups: number[][];
  /** Messages written, per publisher. */
  published: number[];
  /** Unacknowledged publishes at the end of the run. */
  unacked: number;
}

/**
 * Computes the integrity of a run.
 *
 * @param reports Sequence reports, indexed by subscriber.
 * @param options Delivery groups, messages written and unacknowledged publishes.
 * @returns The integrity counts.
 */
export function computeIntegrity(reports: SequenceReport[], options: IntegrityOptions): Integrity {
  const { groups, published, unacked } = options;
  const totalPublished = published.reduce((sum, count) => sum + count, 0);
  const result: Integrity = {
    published: totalPublished,
    expected: totalPublished * groups.length,
    delivered: 0,
    lost: 0,
    duplicated: 0,
    outOfOrder: 0,
    unacked,
  };
  for (const report of reports) {
    result.delivered += report.received;
    result.duplicated += report.duplicated;
    result.outOfOrder += report.outOfOrder;
  }
  for (const group of groups) {
    published.forEach((count, publisher) => {
      const merged = new Uint8Array((count + 7) >>> 3);
      for (const subscriber of group) {
        const seen = reports[subscriber].seen[publisher];
        for (let i = 0; i < seen.length && i < merged.length; i++) {
          result.duplicated += POPCOUNT[merged[i] & seen[i]];
          merged[i] |= seen[i];
        }
      }
      result.lost += count - countBits(merged);
    });
  }
  return result;
}
