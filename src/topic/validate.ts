/**
 * Topic Name and Topic Filter validation (MQTT 5.0 section 4.7, MQTT 3.1.1 section 4.7).
 *
 * Spec tags in brackets are MQTT 5.0 ids; where MQTT 3.1.1 numbers the same rule differently, its
 * id follows in parentheses.
 *
 * @module
 */

import { MqttError } from "../codec/errors.ts";
import { ReasonCode } from "../codec/reason_codes.ts";

/** The most bytes a Topic Name or Topic Filter may encode to in UTF-8 [MQTT-4.7.3-3]. */
export const MAX_TOPIC_BYTES = 65_535;

/** Broker-configured limits, tighter than the spec's, applied on top of the spec rules. */
export interface TopicLimits {
  /** Maximum length in UTF-8 bytes; capped at {@linkcode MAX_TOPIC_BYTES}. */
  maxLength?: number;
  /** Maximum number of levels (one more than the number of `/` separators). */
  maxLevels?: number;
  /**
   * Refuse the control characters U+0001-U+001F and U+007F-U+009F as Malformed (0x81), which
   * MQTT lets a receiver do (MQTT 5 section 1.5.4; 3.1.1 section 1.5.3): they end up in logs, the
   * admin API and the dashboard.
   */
  rejectControlCharacters?: boolean;
}

/** Whether a UTF-16 unit is a control character U+0001-U+001F or U+007F-U+009F. */
export function isControlCharacter(c: number): boolean {
  return (c >= 0x01 && c <= 0x1f) || (c >= 0x7f && c <= 0x9f);
}

/** Whether a string contains a control character U+0001-U+001F or U+007F-U+009F. */
export function hasControlCharacter(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (isControlCharacter(s.charCodeAt(i))) return true;
  return false;
}

const SLASH = 0x2f;
const PLUS = 0x2b;
const HASH = 0x23;
const DOLLAR = 0x24;

/**
 * Checks a Topic Name as carried in PUBLISH, a Will or a Response Topic.
 *
 * @param topic The Topic Name.
 * @param limits Configured length and level limits.
 * @returns `undefined` if the name is valid, else an {@linkcode MqttError} with reason code 0x90
 * (Topic Name invalid).
 *
 * @example Reject a wildcard in a topic name
 * ```ts
 * import assert from "node:assert/strict";
 * import { validateTopicName } from "./validate.ts";
 *
 * assert.equal(validateTopicName("sport/tennis"), undefined);
 * assert.equal(validateTopicName("sport/+")?.reasonCode, 0x90);
 * ```
 */
export function validateTopicName(topic: string, limits?: TopicLimits): MqttError | undefined {
  // [MQTT-4.7.3-1]
  if (topic.length === 0) return nameError(topic, "it is empty");
  const rejectControl = limits?.rejectControlCharacters ?? false;
  let levels = 1;
  let bytes = 0;
  for (let i = 0; i < topic.length; i++) {
    const c = topic.charCodeAt(i);
    if (rejectControl && isControlCharacter(c)) return controlError("topic name", topic, i);
    if (c < 0x80) {
      bytes++;
      if (c === SLASH) {
        levels++;
      } else if (c === PLUS || c === HASH) {
        // [MQTT-4.7.0-1] (3.1.1: MQTT-4.7.1-1) [MQTT-3.3.2-2]
        return nameError(topic, `it contains the wildcard "${String.fromCharCode(c)}"`);
      } else if (c === 0) {
        // [MQTT-4.7.3-2]
        return nameError(topic, "it contains the null character U+0000");
      }
    } else {
      const n = utf8Width(topic, i, c);
      if (n === 0) return nameError(topic, `it contains a lone surrogate at index ${i}`);
      bytes += n;
      if (n === 4) i++;
    }
  }
  const detail = checkLimits(bytes, levels, limits);
  return detail === undefined ? undefined : nameError(topic, detail);
}

/**
 * Checks a Topic Filter as carried in SUBSCRIBE or UNSUBSCRIBE. A shared subscription's filter
 * (`$share/{ShareName}/{filter}`) passes as a plain filter; use `parseSharedFilter()` to split it.
 *
 * @param filter The Topic Filter.
 * @param limits Configured length and level limits.
 * @returns `undefined` if the filter is valid; else an {@linkcode MqttError}: Malformed Packet
 * (0x81) for a filter that breaks the format of section 4.7 (empty, a misplaced wildcard, U+0000,
 * a lone surrogate, a refused control character), which closes the connection; Topic Filter
 * invalid (0x8F) for a well-formed filter beyond the configured limits, answered in SUBACK.
 *
 * @example Reject a misplaced multi-level wildcard
 * ```ts
 * import assert from "node:assert/strict";
 * import { validateTopicFilter } from "./validate.ts";
 *
 * assert.equal(validateTopicFilter("sport/+/player1/#"), undefined);
 * assert.equal(validateTopicFilter("sport/#/ranking")?.reasonCode, 0x81);
 * assert.equal(validateTopicFilter("a/b/c", { maxLevels: 2 })?.reasonCode, 0x8f);
 * ```
 */
export function validateTopicFilter(filter: string, limits?: TopicLimits): MqttError | undefined {
  // [MQTT-4.7.3-1]
  if (filter.length === 0) return malformedFilter(filter, "it is empty");
  const rejectControl = limits?.rejectControlCharacters ?? false;
  const last = filter.length - 1;
  let levels = 1;
  let bytes = 0;
  let levelStart = 0;
  for (let i = 0; i <= last; i++) {
    const c = filter.charCodeAt(i);
    if (rejectControl && isControlCharacter(c)) return controlError("topic filter", filter, i);
    if (c < 0x80) {
      bytes++;
      if (c === SLASH) {
        levels++;
        levelStart = i + 1;
      } else if (c === PLUS) {
        // [MQTT-4.7.1-2] (3.1.1: MQTT-4.7.1-3)
        if (i !== levelStart || (i !== last && filter.charCodeAt(i + 1) !== SLASH)) {
          return malformedFilter(filter, `"+" must occupy a whole level, at index ${i}`);
        }
      } else if (c === HASH) {
        // [MQTT-4.7.1-1] (3.1.1: MQTT-4.7.1-2)
        if (i !== levelStart || (i !== last && filter.charCodeAt(i + 1) !== SLASH)) {
          return malformedFilter(filter, `"#" must occupy a whole level, at index ${i}`);
        }
        if (i !== last) {
          return malformedFilter(filter, `"#" must be the last level, at index ${i}`);
        }
      } else if (c === 0) {
        // [MQTT-4.7.3-2]
        return malformedFilter(filter, "it contains the null character U+0000");
      }
    } else {
      const n = utf8Width(filter, i, c);
      if (n === 0) return malformedFilter(filter, `it contains a lone surrogate at index ${i}`);
      bytes += n;
      if (n === 4) i++;
    }
  }
  const detail = checkLimits(bytes, levels, limits);
  return detail === undefined ? undefined : filterError(filter, detail);
}

/**
 * Tells whether a (valid) Topic Filter contains a wildcard, `+` or `#`.
 *
 * @param filter A Topic Filter that passed {@linkcode validateTopicFilter}.
 * @returns `true` if it contains `+` or `#`.
 *
 * @example Tell a wildcard filter
 * ```ts
 * import assert from "node:assert/strict";
 * import { isWildcardFilter } from "./validate.ts";
 *
 * assert.equal(isWildcardFilter("a/+/c"), true);
 * assert.equal(isWildcardFilter("a/b/c"), false);
 * ```
 */
export function isWildcardFilter(filter: string): boolean {
  return filter.indexOf("+") !== -1 || filter.indexOf("#") !== -1;
}

/**
 * Tells whether a Topic Name is reserved for server use by starting with `$` (such as `$SYS/`).
 * Filters starting with a wildcard do not match such topics [MQTT-4.7.2-1].
 *
 * @param topic A Topic Name.
 * @returns `true` if its first character is `$`.
 *
 * @example Tell a `$SYS` topic
 * ```ts
 * import assert from "node:assert/strict";
 * import { isSysTopic } from "./validate.ts";
 *
 * assert.equal(isSysTopic("$SYS/broker/uptime"), true);
 * assert.equal(isSysTopic("SYS/broker/uptime"), false);
 * ```
 */
export function isSysTopic(topic: string): boolean {
  return topic.charCodeAt(0) === DOLLAR;
}

/**
 * UTF-8 width of the non-ASCII UTF-16 unit `c` at index `i`: 2 or 3, 4 for a surrogate pair, 0
 * for a lone surrogate (not a Unicode scalar value, so no valid UTF-8 encodes it [MQTT-1.5.4-1]
 * (3.1.1: MQTT-1.5.3-1)).
 */
function utf8Width(s: string, i: number, c: number): number {
  if (c < 0x800) return 2;
  if (c < 0xd800 || c > 0xdfff) return 3;
  if (c > 0xdbff) return 0;
  const d = s.charCodeAt(i + 1);
  return d >= 0xdc00 && d <= 0xdfff ? 4 : 0;
}

function checkLimits(bytes: number, levels: number, limits?: TopicLimits): string | undefined {
  // [MQTT-4.7.3-3]
  const maxLength = Math.min(limits?.maxLength ?? MAX_TOPIC_BYTES, MAX_TOPIC_BYTES);
  if (bytes > maxLength) return `it is ${bytes} bytes long, the maximum is ${maxLength}`;
  const maxLevels = limits?.maxLevels;
  if (maxLevels !== undefined && levels > maxLevels) {
    return `it has ${levels} levels, the maximum is ${maxLevels}`;
  }
  return undefined;
}

function nameError(topic: string, detail: string): MqttError {
  return new MqttError(
    ReasonCode.TopicNameInvalid,
    `Invalid topic name ${quote(topic)}: ${detail}`,
  );
}

/** A filter that breaks the format of section 4.7: the packet carrying it is malformed. */
function malformedFilter(filter: string, detail: string): MqttError {
  return new MqttError(
    ReasonCode.MalformedPacket,
    `Invalid topic filter ${quote(filter)}: ${detail}`,
  );
}

function controlError(what: string, value: string, index: number): MqttError {
  return new MqttError(
    ReasonCode.MalformedPacket,
    `Invalid ${what} ${quote(value)}: it contains the control character U+${
      value.charCodeAt(index).toString(16).toUpperCase().padStart(4, "0")
    } at index ${index}`,
  );
}

function filterError(filter: string, detail: string): MqttError {
  return new MqttError(
    ReasonCode.TopicFilterInvalid,
    `Invalid topic filter ${quote(filter)}: ${detail}`,
  );
}

/** Quotes a topic for a message, escaping control characters and shortening long ones. */
function quote(s: string): string {
  return JSON.stringify(s.length > 64 ? `${s.slice(0, 61)}...` : s);
}
