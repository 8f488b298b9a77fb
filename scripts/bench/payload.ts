/**
 * Layout of the generator's message payload. Every message carries its publisher, a per-publisher
 * sequence number (for loss, duplicate and order checks) and its send time on the generator's
 * `performance.now()` clock (latency is only measured where sender and receiver share that clock).
 *
 * @module
 */

/** Offset of the publisher index (u32, big endian). */
export const PUBLISHER_OFFSET = 0;
/** Offset of the sequence number (u32, big endian, from 0). */
export const SEQUENCE_OFFSET = 4;
/** Offset of the send time in milliseconds (f64, big endian). */
export const SENT_AT_OFFSET = 8;
/** The smallest payload that holds the fields above. */
export const MIN_PAYLOAD_SIZE = 16;
