/**
 * MQTT 5 Topic Alias tables (section 3.3.2.3.4), one pair per Network Connection: aliases are
 * never carried from one connection to the next [MQTT-3.3.2-7], so create fresh tables on every
 * CONNECT.
 *
 * @module
 */

import { MqttError, protocolError } from "../codec/errors.ts";
import { ReasonCode } from "../codec/reason_codes.ts";

/** The largest Topic Alias Maximum, a Two Byte Integer. */
const MAX_ALIAS = 0xffff;

function checkMaximum(maximum: number): void {
  if (!Number.isInteger(maximum) || maximum < 0 || maximum > MAX_ALIAS) {
    throw new RangeError(
      `Cannot create topic alias table: maximum must be an integer from 0 to 65535, got ${maximum}`,
    );
  }
}

/**
 * The aliases a client sets on its PUBLISH packets (client to server).
 *
 * @example Resolve a PUBLISH topic
 * ```ts
 * import assert from "node:assert/strict";
 * import { MqttError } from "../codec/errors.ts";
 * import { InboundTopicAliases } from "./topic_alias.ts";
 *
 * const aliases = new InboundTopicAliases(10); // the Topic Alias Maximum sent in CONNACK
 * assert.equal(aliases.resolve(1, "sensors/a/temperature"), "sensors/a/temperature"); // maps 1
 * assert.equal(aliases.resolve(1, ""), "sensors/a/temperature");
 * assert.equal((aliases.resolve(11, "x") as MqttError).reasonCode, 0x94);
 * ```
 */
export class InboundTopicAliases {
  readonly #maximum: number;
  readonly #topics = new Map<number, string>();

  /**
   * @param maximum The Topic Alias Maximum the server sent in CONNACK (0 when absent).
   * @throws {RangeError} If `maximum` is not an integer from 0 to 65535.
   */
  constructor(maximum: number) {
    checkMaximum(maximum);
    this.#maximum = maximum;
  }

  /**
   * Resolves the Topic Name of a PUBLISH from its Topic Name and Topic Alias fields. A non-empty
   * topic with an alias sets (or replaces) the alias's mapping. The result still needs
   * `validateTopicName()`.
   *
   * @param alias The Topic Alias property, or `undefined` if absent.
   * @param topic The Topic Name field, possibly empty.
   * @returns The Topic Name to use, or an {@linkcode MqttError}: 0x94 (Topic Alias invalid) for an
   * alias of 0 or above the maximum, 0x82 (Protocol Error) for an empty topic with no alias or with
   * an alias that has no mapping.
   */
  resolve(alias: number | undefined, topic: string): string | MqttError {
    if (alias === undefined) {
      return topic.length === 0
        ? protocolError("Cannot resolve topic: the topic name is empty and there is no topic alias")
        : topic;
    }
    // [MQTT-3.3.2-8] [MQTT-3.3.2-9] [MQTT-3.2.2-18]; accepted otherwise [MQTT-3.3.2-12]
    if (alias === 0 || alias > this.#maximum) {
      const detail = this.#maximum === 0
        ? "the server accepts no topic aliases"
        : `it must be from 1 to ${this.#maximum}`;
      return new MqttError(
        ReasonCode.TopicAliasInvalid,
        `Cannot resolve topic alias ${alias}: ${detail}`,
      );
    }
    if (topic.length > 0) {
      this.#topics.set(alias, topic);
      return topic;
    }
    return this.#topics.get(alias) ??
      protocolError(`Cannot resolve topic alias ${alias}: it has no topic mapped`);
  }
}

/** How to send a topic on an outbound PUBLISH, from {@linkcode OutboundTopicAliases.lookup}. */
export interface TopicAliasAssignment {
  /** The Topic Alias to send. */
  readonly alias: number;
  /**
   * `true`: send the Topic Name and the alias (this sets the mapping on the client); `false`: send
   * an empty Topic Name and the alias.
   */
  readonly isNew: boolean;
}

/**
 * The aliases the server sets on PUBLISH packets to a client (server to client), at most the
 * client's Topic Alias Maximum of them [MQTT-3.3.2-11]. When all are in use, the least recently
 * used alias is moved to the new topic.
 *
 * @example Send a topic once, then only its alias
 * ```ts
 * import assert from "node:assert/strict";
 * import { OutboundTopicAliases } from "./topic_alias.ts";
 *
 * const aliases = new OutboundTopicAliases(2); // the Topic Alias Maximum sent in CONNECT
 * assert.deepEqual(aliases.lookup("a/b"), { alias: 1, isNew: true }); // send topic and alias
 * assert.deepEqual(aliases.lookup("a/b"), { alias: 1, isNew: false }); // send the alias only
 * ```
 */
export class OutboundTopicAliases {
  readonly #maximum: number;
  /** The `isNew: false` assignment of each aliased topic, least recently used first. */
  readonly #byTopic = new Map<string, TopicAliasAssignment>();
  /** The topic last looked up (already the most recently used, so no reordering is needed). */
  #last: string | undefined = undefined;

  /**
   * @param maximum The Topic Alias Maximum the client sent in CONNECT (0 when absent: no aliases).
   * @throws {RangeError} If `maximum` is not an integer from 0 to 65535.
   */
  constructor(maximum: number) {
    checkMaximum(maximum);
    this.#maximum = maximum;
  }

  /**
   * What {@linkcode lookup} would return for `topic`, without recording anything: for sizing a
   * PUBLISH that may yet be dropped as too large for the client.
   *
   * @param topic The Topic Name of the PUBLISH.
   * @returns The assignment, or `undefined` if the client accepts no aliases.
   */
  peek(topic: string): TopicAliasAssignment | undefined {
    const known = this.#byTopic.get(topic);
    if (known !== undefined) return known;
    if (this.#maximum === 0) return undefined;
    const alias = this.#byTopic.size < this.#maximum
      ? this.#byTopic.size + 1
      : this.#byTopic.values().next().value!.alias;
    return { alias, isNew: true };
  }

  /**
   * Assigns `topic` an alias, marking it most recently used. Call it only for a PUBLISH that will
   * be written: an `isNew` assignment the client never receives leaves the client without the
   * mapping. A hit returns a shared frozen object and allocates nothing.
   *
   * @param topic The Topic Name of the PUBLISH.
   * @returns The alias to send and whether to send the topic too, or `undefined` if the client
   * accepts no aliases.
   */
  lookup(topic: string): TopicAliasAssignment | undefined {
    const known = this.#byTopic.get(topic);
    if (known !== undefined) {
      if (this.#last !== topic) {
        this.#byTopic.delete(topic);
        this.#byTopic.set(topic, known);
        this.#last = topic;
      }
      return known;
    }
    if (this.#maximum === 0) return undefined;
    let alias: number;
    if (this.#byTopic.size < this.#maximum) {
      alias = this.#byTopic.size + 1;
    } else {
      const [oldest, assignment] = this.#byTopic.entries().next().value!;
      this.#byTopic.delete(oldest);
      alias = assignment.alias;
    }
    this.#byTopic.set(topic, Object.freeze({ alias, isNew: false }));
    this.#last = topic;
    return { alias, isNew: true };
  }
}
