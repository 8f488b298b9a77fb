/**
 * The retained-message index: values stored by exact Topic Name, found by Topic Filter when a
 * client subscribes (MQTT 5.0 section 3.3.1.3, [MQTT-3.3.1-9]).
 *
 * @module
 */

import { isWildcardFilter } from "./validate.ts";

const DOLLAR = 0x24;

/** A level of the topic tree. The root has no parent and never holds a value. */
class TopicNode<V> {
  children: Map<string, TopicNode<V>> | undefined = undefined;
  /** Whether a topic ends here (`value` may itself be `undefined`). */
  hasValue = false;
  value: V | undefined = undefined;

  constructor(
    readonly parent: TopicNode<V> | undefined,
    /** This node's level in its parent. */
    readonly level: string,
  ) {}
}

/**
 * A generic index of values by Topic Name (the retained message of each topic), answering "which
 * stored topics match this Topic Filter" by walking only the branches the filter can match.
 *
 * Exact lookups go through a `Map`; a wildcard filter walks a tree of levels: a literal level
 * follows one child, `+` every child, `#` the whole subtree including its parent level. A filter
 * starting with `+` or `#` skips topics starting with `$` [MQTT-4.7.2-1]. Nodes are removed as
 * soon as they hold nothing.
 *
 * @typeParam V The value type, such as a retained message.
 *
 * @example Find retained messages for a wildcard subscription
 * ```ts
 * import assert from "node:assert/strict";
 * import { RetainedIndex } from "./retained_index.ts";
 *
 * const retained = new RetainedIndex<string>();
 * retained.set("sport/tennis/player1", "15-0");
 * retained.set("sport/golf", "par");
 * const out: string[] = [];
 * retained.matchFilter("sport/+/player1", out);
 * assert.deepEqual(out, ["15-0"]);
 * ```
 */
export class RetainedIndex<V> {
  readonly #nodes = new Map<string, TopicNode<V>>();
  readonly #root = new TopicNode<V>(undefined, "");
  #treeNodes = 0;

  /** The number of stored topics. */
  get size(): number {
    return this.#nodes.size;
  }

  /**
   * The number of tree nodes (levels). It returns to 0 when every topic is deleted. For tests and
   * memory diagnostics.
   */
  get nodeCount(): number {
    return this.#treeNodes;
  }

  /**
   * Stores `value` for `topic`, replacing any value it had.
   *
   * @param topic A valid Topic Name.
   * @param value The value to store.
   * @returns `true` if the topic is new.
   */
  set(topic: string, value: V): boolean {
    const existing = this.#nodes.get(topic);
    if (existing !== undefined) {
      existing.value = value;
      return false;
    }
    let node = this.#root;
    let start = 0;
    for (;;) {
      let end = topic.indexOf("/", start);
      if (end === -1) end = topic.length;
      const level = topic.slice(start, end);
      let child = node.children?.get(level);
      if (child === undefined) {
        child = new TopicNode(node, level);
        (node.children ??= new Map()).set(level, child);
        this.#treeNodes++;
      }
      node = child;
      if (end === topic.length) break;
      start = end + 1;
    }
    node.hasValue = true;
    node.value = value;
    this.#nodes.set(topic, node);
    return true;
  }

  /**
   * Reads the value stored for `topic`.
   *
   * @param topic A Topic Name.
   * @returns The value, or `undefined` if none is stored.
   */
  get(topic: string): V | undefined {
    return this.#nodes.get(topic)?.value;
  }

  /**
   * Deletes the value stored for `topic`.
   *
   * @param topic A Topic Name.
   * @returns `true` if a value was stored.
   */
  delete(topic: string): boolean {
    let node = this.#nodes.get(topic);
    if (node === undefined) return false;
    this.#nodes.delete(topic);
    node.hasValue = false;
    node.value = undefined;
    let parent = node.parent;
    while (parent !== undefined && !node.hasValue && node.children === undefined) {
      parent.children!.delete(node.level);
      if (parent.children!.size === 0) parent.children = undefined;
      this.#treeNodes--;
      node = parent;
      parent = node.parent;
    }
    return true;
  }

  /**
   * Appends to `out` the value of every stored topic that `filter` matches, in no particular
   * order.
   *
   * @param filter A valid Topic Filter (for a shared subscription, the part after the group).
   * @param out The array to append to.
   */
  matchFilter(filter: string, out: V[]): void {
    if (!isWildcardFilter(filter)) {
      const node = this.#nodes.get(filter);
      if (node !== undefined) out.push(node.value as V);
      return;
    }
    walkFilter(this.#root, filter, 0, out);
  }

  /**
   * Iterates every stored topic and its value, for listings. Do not modify the index meanwhile.
   *
   * @returns An iterator of `[topic, value]`.
   */
  *entries(): IterableIterator<[topic: string, value: V]> {
    for (const [topic, node] of this.#nodes) yield [topic, node.value as V];
  }
}

/**
 * Appends the values under `node` that match the filter levels from offset `start` on; `start`
 * is `filter.length + 1` once every level has been consumed.
 */
function walkFilter<V>(node: TopicNode<V>, filter: string, start: number, out: V[]): void {
  for (;;) {
    if (start > filter.length) {
      if (node.hasValue) out.push(node.value as V);
      return;
    }
    let end = filter.indexOf("/", start);
    if (end === -1) end = filter.length;
    const wildcard = end - start === 1 ? filter.charCodeAt(start) : 0;
    if (wildcard === 0x23) {
      // `#` matches the parent level and every level below it.
      if (node.hasValue) out.push(node.value as V);
      pushSubtree(node, start === 0, out);
      return;
    }
    const children = node.children;
    if (children === undefined) return;
    if (wildcard === 0x2b) {
      for (const [level, child] of children) {
        // [MQTT-4.7.2-1]
        if (start === 0 && level.charCodeAt(0) === DOLLAR) continue;
        walkFilter(child, filter, end + 1, out);
      }
      return;
    }
    const child = children.get(filter.slice(start, end));
    if (child === undefined) return;
    node = child;
    start = end + 1;
  }
}

/** Appends the values of every node below `node`; at the root, `$` topics are left out. */
function pushSubtree<V>(node: TopicNode<V>, atRoot: boolean, out: V[]): void {
  if (node.children === undefined) return;
  for (const [level, child] of node.children) {
    // [MQTT-4.7.2-1]
    if (atRoot && level.charCodeAt(0) === DOLLAR) continue;
    if (child.hasValue) out.push(child.value as V);
    pushSubtree(child, false, out);
  }
}
