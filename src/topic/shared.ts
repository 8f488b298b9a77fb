/**
 * Shared subscriptions (MQTT 5.0 section 4.8.2): parsing `$share/{ShareName}/{filter}` and the
 * legacy `$queue/{filter}`, and round-robin selection of one member of a group per message.
 *
 * @module
 */

import { MqttError } from "../codec/errors.ts";
import { ReasonCode } from "../codec/reason_codes.ts";
import { type TopicLimits, validateTopicFilter } from "./validate.ts";

/** The group of legacy `$queue/{filter}` subscriptions (as EMQX: `$share/$queue/{filter}`). */
export const QUEUE_GROUP = "$queue";

const SHARE_PREFIX = "$share/";
const QUEUE_PREFIX = "$queue/";

/** A shared subscription's Topic Filter, split into its group and the filter topics match. */
export interface SharedFilter {
  /** The ShareName, or {@linkcode QUEUE_GROUP} for `$queue/{filter}`. */
  readonly group: string;
  /** The Topic Filter after the group, the one topics are matched against. */
  readonly filter: string;
}

/**
 * Splits a shared subscription's Topic Filter. `$queue/{filter}` is read as
 * `$share/$queue/{filter}`, as EMQX does, so both spellings join one group.
 *
 * @param filter A Topic Filter from SUBSCRIBE or UNSUBSCRIBE.
 * @param limits Configured limits, applied to the filter after the group.
 * @returns `undefined` if `filter` is not a shared subscription (validate it as a plain filter),
 * the parts if it is a valid one, or an {@linkcode MqttError} with reason code 0x8F (Topic Filter
 * invalid) if it is a malformed one.
 *
 * @example Split a shared subscription
 * ```ts
 * import assert from "node:assert/strict";
 * import { MqttError } from "../codec/errors.ts";
 * import { parseSharedFilter } from "./shared.ts";
 *
 * assert.deepEqual(parseSharedFilter("$share/workers/jobs/+"), {
 *   group: "workers",
 *   filter: "jobs/+",
 * });
 * assert.deepEqual(parseSharedFilter("$queue/jobs/#"), { group: "$queue", filter: "jobs/#" });
 * assert.equal(parseSharedFilter("jobs/+"), undefined);
 * assert.equal((parseSharedFilter("$share/a+b/jobs") as MqttError).reasonCode, 0x81);
 * ```
 */
export function parseSharedFilter(
  filter: string,
  limits?: TopicLimits,
): SharedFilter | MqttError | undefined {
  let group: string;
  let rest: string;
  if (filter.startsWith(SHARE_PREFIX)) {
    const slash = filter.indexOf("/", SHARE_PREFIX.length);
    group = filter.slice(SHARE_PREFIX.length, slash === -1 ? filter.length : slash);
    // [MQTT-4.8.2-1]
    if (group.length === 0) return sharedError(filter, "the ShareName is empty");
    // [MQTT-4.8.2-2]
    if (group.indexOf("+") !== -1 || group.indexOf("#") !== -1) {
      return sharedError(filter, 'the ShareName must not contain "+" or "#"');
    }
    // [MQTT-4.7.3-2]
    if (group.indexOf("\0") !== -1) {
      return sharedError(filter, "the ShareName contains the null character U+0000");
    }
    // [MQTT-4.8.2-2]
    if (slash === -1) return sharedError(filter, 'the ShareName must be followed by "/"');
    rest = filter.slice(slash + 1);
  } else if (filter.startsWith(QUEUE_PREFIX)) {
    group = QUEUE_GROUP;
    rest = filter.slice(QUEUE_PREFIX.length);
  } else {
    return undefined;
  }
  // [MQTT-4.8.2-2]
  if (rest.length === 0) return sharedError(filter, "no topic filter follows the group");
  const error = validateTopicFilter(rest, limits);
  return error ?? { group, filter: rest };
}

/** A share prefix that breaks the format of section 4.8.2: the packet carrying it is malformed. */
function sharedError(filter: string, detail: string): MqttError {
  return new MqttError(
    ReasonCode.MalformedPacket,
    `Invalid shared subscription ${JSON.stringify(filter)}: ${detail}`,
  );
}

/** A member's place in the ring of a {@linkcode SharedGroup}. */
class Link<M> {
  prev: Link<M>;
  next: Link<M>;
  constructor(readonly member: M) {
    this.prev = this;
    this.next = this;
  }
}

/**
 * The members of one shared subscription group, picked round-robin: each message goes to one
 * member, and successive messages go to successive members in insertion order.
 *
 * Members live in a circular doubly linked list with a cursor, so `add`, `remove` and a `next`
 * whose first candidate is accepted are O(1), and nothing is rebuilt per pick. Members compare
 * with SameValueZero (as `Map` keys).
 *
 * @typeParam M The member type, such as a session or client id.
 *
 * @example Round robin, skipping a member that cannot take the message
 * ```ts
 * import assert from "node:assert/strict";
 * import { SharedGroup } from "./shared.ts";
 *
 * const group = new SharedGroup<string>();
 * group.add("a");
 * group.add("b");
 * group.add("c");
 * assert.equal(group.next(), "a");
 * assert.equal(group.next((m) => m !== "b"), "c");
 * assert.equal(group.next(), "a");
 * ```
 */
export class SharedGroup<M> {
  readonly #links = new Map<M, Link<M>>();
  /** The oldest member: the ring runs in insertion order from here. */
  #head: Link<M> | undefined = undefined;
  /** The member `next()` tries first. */
  #cursor: Link<M> | undefined = undefined;

  /** The number of members. */
  get size(): number {
    return this.#links.size;
  }

  /**
   * Adds a member at the end of the insertion order; it gets its turn when the round reaches it.
   *
   * @param member The member to add.
   * @returns `true` if it was added, `false` if it was already a member (its place is kept).
   */
  add(member: M): boolean {
    if (this.#links.has(member)) return false;
    const link = new Link(member);
    this.#links.set(member, link);
    const head = this.#head;
    if (head === undefined) {
      this.#head = link;
      this.#cursor = link;
    } else {
      const tail = head.prev;
      link.prev = tail;
      link.next = head;
      tail.next = link;
      head.prev = link;
    }
    return true;
  }

  /**
   * Removes a member; if it was next in turn, its successor takes its turn.
   *
   * @param member The member to remove.
   * @returns `true` if it was a member.
   */
  remove(member: M): boolean {
    const link = this.#links.get(member);
    if (link === undefined) return false;
    this.#links.delete(member);
    if (this.#links.size === 0) {
      this.#cursor = undefined;
      this.#head = undefined;
      return true;
    }
    if (this.#cursor === link) this.#cursor = link.next;
    if (this.#head === link) this.#head = link.next;
    link.prev.next = link.next;
    link.next.prev = link.prev;
    return true;
  }

  /**
   * Tells whether `member` is in the group.
   *
   * @param member The candidate.
   * @returns `true` if it is a member.
   */
  has(member: M): boolean {
    return this.#links.has(member);
  }

  /**
   * Picks the member whose turn it is and advances the turn past it.
   *
   * With `accept`, members it rejects (offline, or with a full inflight window) are skipped, in
   * round-robin order, and the first accepted one is picked. If it rejects every member, the
   * member whose turn it was is picked anyway, so the message is still delivered once (queued in
   * that member's session); a caller that would rather drop it can test the result with `accept`.
   *
   * @param accept Optional predicate; called at most once per member.
   * @returns The picked member, or `undefined` if the group is empty.
   */
  next(accept?: (member: M) => boolean): M | undefined {
    const first = this.#cursor;
    if (first === undefined) return undefined;
    let link = first;
    if (accept !== undefined) {
      while (!accept(link.member)) {
        link = link.next;
        if (link === first) break;
      }
    }
    this.#cursor = link.next;
    return link.member;
  }

  /**
   * Iterates the members in insertion order.
   *
   * @returns An iterator over the members.
   */
  *[Symbol.iterator](): IterableIterator<M> {
    yield* this.#links.keys();
  }
}
