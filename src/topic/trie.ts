/**
 * The subscription index: Topic Filters to values, matched against the Topic Name of every
 * PUBLISH (MQTT 5.0 section 4.7). This is the routing hot path.
 *
 * @module
 */

import { isWildcardFilter } from "./validate.ts";

const SLASH = 0x2f;
const DOLLAR = 0x24;

/** Where {@linkcode SubscriptionTrie.match} appends the values it finds. */
export interface MatchSink<V> {
  push(value: V): unknown;
}

/** Buckets up to this size find keys by a linear scan; larger ones build a `Map` index. */
const SCAN_MAX = 8;

/**
 * The values stored under one Topic Filter, by key, in dense arrays (so matching copies values
 * out with a plain indexed loop). Most filters have one or a few keys, so a bucket scans its keys
 * until it grows past {@linkcode SCAN_MAX}, then indexes them with a `Map` from key to position.
 * Either way keys compare with SameValueZero, as `Map` keys do.
 */
class Bucket<K, V> {
  readonly keys: K[];
  readonly values: V[];
  #index: Map<K, number> | undefined = undefined;

  constructor(key: K, value: V) {
    this.keys = [key];
    this.values = [value];
  }

  get size(): number {
    return this.values.length;
  }

  get(key: K): V | undefined {
    const i = this.#find(key);
    return i === -1 ? undefined : this.values[i];
  }

  /** Sets the value for `key`; returns `true` if the key is new. */
  set(key: K, value: V): boolean {
    const i = this.#find(key);
    if (i !== -1) {
      this.values[i] = value;
      return false;
    }
    const keys = this.keys;
    if (this.#index !== undefined) {
      this.#index.set(key, keys.length);
    } else if (keys.length === SCAN_MAX) {
      this.#index = new Map(keys.map((k, j) => [k, j]));
      this.#index.set(key, keys.length);
    }
    keys.push(key);
    this.values.push(value);
    return true;
  }

  /** Deletes `key` by moving the last entry into its place; returns `true` if it was there. */
  delete(key: K): boolean {
    const i = this.#find(key);
    if (i === -1) return false;
    const keys = this.keys;
    const values = this.values;
    const last = keys.length - 1;
    if (i !== last) {
      keys[i] = keys[last];
      values[i] = values[last];
      this.#index?.set(keys[i], i);
    }
    this.#index?.delete(key);
    keys.pop();
    values.pop();
    return true;
  }

  pushValues(out: MatchSink<V>): void {
    const values = this.values;
    for (let i = 0; i < values.length; i++) out.push(values[i]);
  }

  #find(key: K): number {
    if (this.#index !== undefined) return this.#index.get(key) ?? -1;
    const keys = this.keys;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i];
      // SameValueZero: NaN equals NaN.
      if (k === key || (k !== k && key !== key)) return i;
    }
    return -1;
  }
}

/** A level of the wildcard trie. The root has no parent; every other node has one. */
class TrieNode<K, V> {
  /** Children by literal level (including the empty level). */
  children: Map<string, TrieNode<K, V>> | undefined = undefined;
  /** The child for a `+` level. */
  plus: TrieNode<K, V> | undefined = undefined;
  /** Values of the filters ending here with a `#` level (`#` needs no node of its own). */
  hash: Bucket<K, V> | undefined = undefined;
  /** Values of the filters ending exactly at this node. */
  values: Bucket<K, V> | undefined = undefined;

  constructor(
    readonly parent: TrieNode<K, V> | undefined,
    /** This node's level in its parent (`"+"` for the `plus` child). */
    readonly level: string,
  ) {}

  isEmpty(): boolean {
    return this.children === undefined && this.plus === undefined && this.hash === undefined &&
      this.values === undefined;
  }
}

/**
 * An index of Topic Filters, each holding values by key (for example filter -> client id ->
 * subscription), answering "which values subscribe to this Topic Name".
 *
 * Filters without wildcards live in one `Map` by filter string, so a topic costs one lookup when
 * no wildcard filter exists. Wildcard filters live in a trie of levels with `+` and `#` slots,
 * walked only while at least one wildcard filter is stored. Nodes are removed as soon as they
 * hold nothing, so subscribe/unsubscribe churn does not leak memory.
 *
 * Matching follows MQTT 5.0 section 4.7: `+` matches exactly one level, including an empty one;
 * `#` matches its parent level and any number of child levels; a filter starting with `+` or `#`
 * does not match a topic starting with `$` [MQTT-4.7.2-1]; levels are compared byte for byte with
 * no normalization [MQTT-4.7.3-4], so empty levels are significant.
 *
 * Filters must be valid (see `validateTopicFilter()`); shared subscriptions are indexed by the
 * filter after the group (see `parseSharedFilter()`).
 *
 * @typeParam V The value type, such as a subscription record.
 * @typeParam K The key type; keys compare as `Map` keys do.
 *
 * @example Match a topic against exact and wildcard filters
 * ```ts
 * import assert from "node:assert/strict";
 * import { SubscriptionTrie } from "./trie.ts";
 *
 * const trie = new SubscriptionTrie<number, string>();
 * trie.add("sport/tennis/player1", "client-a", 1);
 * trie.add("sport/+/player1", "client-b", 2);
 * trie.add("sport/#", "client-c", 0);
 * const out: number[] = [];
 * trie.match("sport/tennis/player1", out);
 * assert.deepEqual(out.sort(), [0, 1, 2]); // in no set order
 * ```
 */
export class SubscriptionTrie<V, K = unknown> {
  readonly #exact = new Map<string, Bucket<K, V>>();
  readonly #root = new TrieNode<K, V>(undefined, "");
  #size = 0;
  #wildcardSize = 0;
  #trieNodes = 0;

  /** The number of (filter, key) entries. */
  get size(): number {
    return this.#size;
  }

  /** Whether any stored filter contains a wildcard (whether `match` walks the trie). */
  get hasWildcards(): boolean {
    return this.#wildcardSize > 0;
  }

  /**
   * The number of internal nodes: one per distinct exact filter plus one per wildcard trie node.
   * It returns to 0 when every entry is removed. For tests and memory diagnostics.
   */
  get nodeCount(): number {
    return this.#exact.size + this.#trieNodes;
  }

  /**
   * Stores `value` for (`filter`, `key`), replacing the value of an existing entry.
   *
   * @param filter A valid Topic Filter.
   * @param key Identifies the entry within the filter, such as a client id.
   * @param value The value `match` yields.
   * @returns `true` if the entry is new, `false` if it replaced a value.
   * @throws {TypeError} If a `#` level is not the last level.
   */
  add(filter: string, key: K, value: V): boolean {
    if (!isWildcardFilter(filter)) {
      const bucket = this.#exact.get(filter);
      if (bucket === undefined) {
        this.#exact.set(filter, new Bucket(key, value));
      } else if (!bucket.set(key, value)) {
        return false;
      }
      this.#size++;
      return true;
    }
    const node = this.#descend(filter, true)!;
    if (endsWithHash(filter)) {
      if (node.hash === undefined) node.hash = new Bucket(key, value);
      else if (!node.hash.set(key, value)) return false;
    } else {
      if (node.values === undefined) node.values = new Bucket(key, value);
      else if (!node.values.set(key, value)) return false;
    }
    this.#size++;
    this.#wildcardSize++;
    return true;
  }

  /**
   * Removes the entry (`filter`, `key`).
   *
   * @param filter The Topic Filter it was added with.
   * @param key The key it was added with.
   * @returns `true` if the entry existed.
   * @throws {TypeError} If a `#` level is not the last level.
   */
  remove(filter: string, key: K): boolean {
    if (!isWildcardFilter(filter)) {
      const bucket = this.#exact.get(filter);
      if (bucket === undefined || !bucket.delete(key)) return false;
      if (bucket.size === 0) this.#exact.delete(filter);
      this.#size--;
      return true;
    }
    const node = this.#descend(filter, false);
    if (node === undefined) return false;
    if (endsWithHash(filter)) {
      if (node.hash === undefined || !node.hash.delete(key)) return false;
      if (node.hash.size === 0) node.hash = undefined;
    } else {
      if (node.values === undefined || !node.values.delete(key)) return false;
      if (node.values.size === 0) node.values = undefined;
    }
    this.#size--;
    this.#wildcardSize--;
    this.#prune(node);
    return true;
  }

  /**
   * Reads the value of the entry (`filter`, `key`).
   *
   * @param filter The Topic Filter it was added with.
   * @param key The key it was added with.
   * @returns The value, or `undefined` if there is no such entry.
   * @throws {TypeError} If a `#` level is not the last level.
   */
  get(filter: string, key: K): V | undefined {
    if (!isWildcardFilter(filter)) return this.#exact.get(filter)?.get(key);
    const node = this.#descend(filter, false);
    if (node === undefined) return undefined;
    return (endsWithHash(filter) ? node.hash : node.values)?.get(key);
  }

  /**
   * Appends to `out` the value of every entry whose filter matches `topic`. Each entry is
   * appended once; a key subscribed through several matching filters is appended once per
   * filter, in no particular order. Allocates nothing but the level strings of the trie walk.
   *
   * @param topic A valid Topic Name.
   * @param out Where to append: an array, or a list that keeps its storage when emptied (an
   *   array emptied by `length = 0` allocates it again at the next push).
   */
  match(topic: string, out: MatchSink<V>): void {
    const bucket = this.#exact.get(topic);
    if (bucket !== undefined) bucket.pushValues(out);
    if (this.#wildcardSize === 0) return;
    const root = this.#root;
    if (topic.charCodeAt(0) !== DOLLAR) {
      walk(root, topic, 0, out);
      return;
    }
    // [MQTT-4.7.2-1] A `$` topic skips the root's `+` and `#`: only a literal first level matches.
    if (root.children === undefined) return;
    let end = topic.indexOf("/");
    if (end === -1) end = topic.length;
    const child = root.children.get(topic.slice(0, end));
    if (child !== undefined) walk(child, topic, end + 1, out);
  }

  /**
   * Iterates every entry, exact filters first, for listings. Do not modify the trie meanwhile.
   *
   * @returns An iterator of `[filter, key, value]`.
   */
  *entries(): IterableIterator<[filter: string, key: K, value: V]> {
    for (const [filter, bucket] of this.#exact) yield* bucketEntries(filter, bucket);
    yield* nodeEntries(this.#root, []);
  }

  /**
   * Finds the node of a wildcard filter (the parent of a trailing `#`), creating the path when
   * `create` is set.
   */
  #descend(filter: string, create: boolean): TrieNode<K, V> | undefined {
    const hashLevel = filter.indexOf("#/");
    if (hashLevel !== -1 && (hashLevel === 0 || filter.charCodeAt(hashLevel - 1) === SLASH)) {
      throw new TypeError(`Cannot index topic filter ${JSON.stringify(filter)}: "#" is not last`);
    }
    let node = this.#root;
    let start = 0;
    for (;;) {
      let end = filter.indexOf("/", start);
      if (end === -1) end = filter.length;
      const level = filter.slice(start, end);
      if (level === "#") return node;
      let child: TrieNode<K, V> | undefined;
      if (level === "+") {
        child = node.plus;
        if (child === undefined && create) node.plus = child = this.#newNode(node, level);
      } else {
        child = node.children?.get(level);
        if (child === undefined && create) {
          child = this.#newNode(node, level);
          (node.children ??= new Map()).set(level, child);
        }
      }
      if (child === undefined) return undefined;
      node = child;
      if (end === filter.length) return node;
      start = end + 1;
    }
  }

  #newNode(parent: TrieNode<K, V>, level: string): TrieNode<K, V> {
    this.#trieNodes++;
    return new TrieNode(parent, level);
  }

  /** Detaches `node` and its ancestors while they hold nothing. */
  #prune(node: TrieNode<K, V>): void {
    let parent = node.parent;
    while (parent !== undefined && node.isEmpty()) {
      if (parent.plus === node) {
        parent.plus = undefined;
      } else {
        parent.children!.delete(node.level);
        if (parent.children!.size === 0) parent.children = undefined;
      }
      this.#trieNodes--;
      node = parent;
      parent = node.parent;
    }
  }
}

/** Whether a filter's last level is `#`. */
function endsWithHash(filter: string): boolean {
  return filter === "#" || filter.endsWith("/#");
}

/**
 * Appends the values of the wildcard filters under `node` that match the topic levels from
 * offset `start` on; `start` is `topic.length + 1` once every level has been consumed.
 */
function walk<K, V>(
  node: TrieNode<K, V>,
  topic: string,
  start: number,
  out: MatchSink<V>,
): void {
  const length = topic.length;
  for (;;) {
    // `#` matches the levels left, or none (the parent level).
    if (node.hash !== undefined) node.hash.pushValues(out);
    if (start > length) {
      if (node.values !== undefined) node.values.pushValues(out);
      return;
    }
    let end = topic.indexOf("/", start);
    if (end === -1) end = length;
    if (node.plus !== undefined) walk(node.plus, topic, end + 1, out);
    const children = node.children;
    if (children === undefined) return;
    const child = children.get(topic.slice(start, end));
    if (child === undefined) return;
    node = child;
    start = end + 1;
  }
}

function* bucketEntries<K, V>(
  filter: string,
  bucket: Bucket<K, V>,
): IterableIterator<[string, K, V]> {
  for (let i = 0; i < bucket.size; i++) yield [filter, bucket.keys[i], bucket.values[i]];
}

function* nodeEntries<K, V>(
  node: TrieNode<K, V>,
  levels: string[],
): IterableIterator<[string, K, V]> {
  if (node.values !== undefined) yield* bucketEntries(levels.join("/"), node.values);
  if (node.hash !== undefined) yield* bucketEntries([...levels, "#"].join("/"), node.hash);
  if (node.plus !== undefined) yield* nodeEntries(node.plus, [...levels, "+"]);
  if (node.children !== undefined) {
    for (const [level, child] of node.children) yield* nodeEntries(child, [...levels, level]);
  }
}
