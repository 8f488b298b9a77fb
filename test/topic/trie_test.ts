import assert from "node:assert/strict";
import { SubscriptionTrie } from "../../src/topic/trie.ts";
import {
  MATCH_CASES,
  type MatchCase,
  naiveMatches,
  naiveMatchesLevels,
  prng,
  randomFilter,
  randomTopic,
} from "./_reference.ts";

/** The filters among `filters` that match `topic`, according to the trie, sorted. */
function matching(filters: string[], topic: string): string[] {
  const trie = new SubscriptionTrie<string>();
  for (const filter of filters) trie.add(filter, "k", filter);
  const out: string[] = [];
  trie.match(topic, out);
  return out.sort();
}

function runCases(cases: MatchCase[]): void {
  for (const [filter, matches, misses] of cases) {
    for (const topic of matches) {
      assert.deepEqual(matching([filter], topic), [filter], `${filter} should match ${topic}`);
    }
    for (const topic of misses) {
      assert.deepEqual(matching([filter], topic), [], `${filter} should not match ${topic}`);
    }
  }
}

Deno.test("naiveMatches(), the reference for the random tests, follows the spec's examples", () => {
  for (const cases of Object.values(MATCH_CASES)) {
    for (const [filter, matches, misses] of cases) {
      for (const topic of matches) {
        assert.equal(naiveMatches(filter, topic), true, `${filter} ${topic}`);
      }
      for (const topic of misses) {
        assert.equal(naiveMatches(filter, topic), false, `${filter} ${topic}`);
      }
    }
  }
});

Deno.test("SubscriptionTrie.match() lets '#' match the parent and any child levels [MQTT-4.7.1-1] (3.1.1: MQTT-4.7.1-2)", () => {
  runCases(MATCH_CASES.hash);
});

Deno.test("SubscriptionTrie.match() lets '+' match exactly one level [MQTT-4.7.1-2] (3.1.1: MQTT-4.7.1-3)", () => {
  runCases(MATCH_CASES.plus);
});

Deno.test("SubscriptionTrie.match() keeps '$' topics from leading wildcards [MQTT-4.7.2-1]", () => {
  runCases(MATCH_CASES.dollar);
});

Deno.test("SubscriptionTrie.match() treats empty levels as levels [MQTT-4.7.3-4]", () => {
  runCases(MATCH_CASES.emptyLevels);
});

Deno.test("SubscriptionTrie.match() compares levels exactly, without normalization [MQTT-4.7.3-4]", () => {
  runCases(MATCH_CASES.exact);
});

Deno.test("SubscriptionTrie.match() yields every matching entry once", () => {
  const trie = new SubscriptionTrie<string, string>();
  const entries: [string, string][] = [
    ["sport/tennis/player1", "a"],
    ["sport/tennis/player1", "b"],
    ["sport/tennis/+", "a"],
    ["sport/+/player1", "a"],
    ["sport/#", "c"],
    ["#", "a"],
    ["+/+/+", "d"],
    ["sport/tennis/player1/#", "e"],
    ["sport/golf", "f"],
    ["+/+", "g"],
  ];
  for (const [filter, key] of entries) {
    assert.equal(trie.add(filter, key, `${filter}|${key}`), true);
  }
  const out: string[] = [];
  trie.match("sport/tennis/player1", out);
  assert.deepEqual(out.sort(), [
    "#|a",
    "+/+/+|d",
    "sport/#|c",
    "sport/+/player1|a",
    "sport/tennis/+|a",
    "sport/tennis/player1/#|e",
    "sport/tennis/player1|a",
    "sport/tennis/player1|b",
  ]);
});

Deno.test("SubscriptionTrie.match() appends to the array it is given", () => {
  const trie = new SubscriptionTrie<number>();
  trie.add("a", 1, 1);
  trie.add("+", 1, 2);
  const out = [0];
  trie.match("a", out);
  trie.match("b", out);
  assert.deepEqual(out, [0, 1, 2, 2]);
});

Deno.test("SubscriptionTrie.add() replaces the value of an existing (filter, key)", () => {
  const trie = new SubscriptionTrie<string, string>();
  for (const filter of ["a/b", "a/+", "a/#"]) {
    assert.equal(trie.add(filter, "k", "old"), true);
    assert.equal(trie.add(filter, "k", "new"), false);
    assert.equal(trie.get(filter, "k"), "new");
  }
  assert.equal(trie.size, 3);
  const out: string[] = [];
  trie.match("a/b", out);
  assert.deepEqual(out, ["new", "new", "new"]);
});

Deno.test("SubscriptionTrie.add() throws a TypeError for '#' before the last level", () => {
  const trie = new SubscriptionTrie<number>();
  for (const filter of ["#/a", "a/#/b", "a/#/"]) {
    assert.throws(() => trie.add(filter, 1, 1), TypeError, filter);
  }
  assert.equal(trie.size, 0);
  assert.equal(trie.nodeCount, 0);
});

Deno.test("SubscriptionTrie.get() finds entries by filter and key", () => {
  const trie = new SubscriptionTrie<number, string>();
  trie.add("a/b", "x", 1);
  trie.add("a/+", "x", 2);
  trie.add("a/#", "y", 3);
  trie.add("#", "y", 4);
  assert.equal(trie.get("a/b", "x"), 1);
  assert.equal(trie.get("a/+", "x"), 2);
  assert.equal(trie.get("a/#", "y"), 3);
  assert.equal(trie.get("#", "y"), 4);
  assert.equal(trie.get("a/b", "y"), undefined);
  assert.equal(trie.get("a/+", "y"), undefined);
  assert.equal(trie.get("a/+/c", "x"), undefined);
  assert.equal(trie.get("b/#", "y"), undefined);
  assert.equal(trie.get("a", "x"), undefined);
});

Deno.test("SubscriptionTrie.remove() removes one (filter, key) and leaves the others", () => {
  const trie = new SubscriptionTrie<string, string>();
  trie.add("a/+", "k1", "v1");
  trie.add("a/+", "k2", "v2");
  trie.add("a/+", "k3", "v3");
  trie.add("a/b", "k1", "v4");
  assert.equal(trie.remove("a/+", "k1"), true);
  assert.equal(trie.remove("a/+", "k1"), false);
  assert.equal(trie.remove("a/b", "k2"), false);
  assert.equal(trie.remove("a/#", "k1"), false);
  assert.equal(trie.remove("x/+", "k1"), false);
  assert.equal(trie.size, 3);
  const out: string[] = [];
  trie.match("a/b", out);
  assert.deepEqual(out.sort(), ["v2", "v3", "v4"]);
  assert.equal(trie.get("a/+", "k3"), "v3");
});

Deno.test("SubscriptionTrie holds many keys per filter", () => {
  const trie = new SubscriptionTrie<number, string>();
  for (const filter of ["a/b", "a/+", "a/#"]) {
    for (let i = 0; i < 1000; i++) assert.equal(trie.add(filter, `k${i}`, i), true);
    for (let i = 0; i < 1000; i += 2) assert.equal(trie.remove(filter, `k${i}`), true);
    for (let i = 0; i < 1000; i++) {
      assert.equal(trie.get(filter, `k${i}`), i % 2 === 0 ? undefined : i, `${filter} k${i}`);
    }
    assert.equal(trie.add(filter, "k1", -1), false);
    assert.equal(trie.get(filter, "k1"), -1);
  }
  assert.equal(trie.size, 1500);
  const out: number[] = [];
  trie.match("a/b", out);
  assert.equal(out.length, 1500);
  for (const filter of ["a/b", "a/+", "a/#"]) {
    for (let i = 1; i < 1000; i += 2) assert.equal(trie.remove(filter, `k${i}`), true);
  }
  assert.equal(trie.size, 0);
  assert.equal(trie.nodeCount, 0);
});

Deno.test("SubscriptionTrie compares keys as Map keys do", () => {
  const trie = new SubscriptionTrie<string>();
  for (const filter of ["a", "+"]) {
    assert.equal(trie.add(filter, NaN, "nan"), true);
    assert.equal(trie.add(filter, NaN, "nan2"), false);
    assert.equal(trie.add(filter, 0, "zero"), true);
    assert.equal(trie.add(filter, -0, "zero2"), false);
    assert.equal(trie.add(filter, "0", "string"), true);
    assert.equal(trie.add(filter, {}, "object"), true);
    assert.equal(trie.add(filter, {}, "another object"), true);
    assert.equal(trie.get(filter, NaN), "nan2");
    assert.equal(trie.remove(filter, NaN), true);
  }
  assert.equal(trie.size, 8);
});

Deno.test("SubscriptionTrie prunes emptied nodes so nodeCount returns to 0", () => {
  const trie = new SubscriptionTrie<number>();
  const filters = [
    "a/b/c",
    "a/b/c/#",
    "a/+/c",
    "a/+/+/#",
    "+",
    "#",
    "+/#",
    "a//b",
    "/+",
    "$SYS/#",
    "a/b/+/d/e/f/g",
  ];
  for (const filter of filters) trie.add(filter, 1, 1);
  assert.ok(trie.nodeCount > 0);
  assert.equal(trie.hasWildcards, true);
  for (const filter of filters) {
    assert.equal(trie.remove(filter, 1), true, filter);
  }
  assert.equal(trie.size, 0);
  assert.equal(trie.nodeCount, 0);
  assert.equal(trie.hasWildcards, false);
  assert.deepEqual([...trie.entries()], []);
});

Deno.test("SubscriptionTrie keeps shared prefixes while another filter needs them", () => {
  const trie = new SubscriptionTrie<number>();
  trie.add("a/b/c/d", 1, 1);
  trie.add("a/b/+", 1, 2);
  trie.add("a/b/+/d", 1, 3);
  const full = trie.nodeCount;
  trie.remove("a/b/+/d", 1);
  assert.equal(trie.nodeCount, full - 1); // only the "d" under "+" goes
  const out: number[] = [];
  trie.match("a/b/x", out);
  assert.deepEqual(out, [2]);
  trie.remove("a/b/+", 1);
  assert.equal(trie.nodeCount, 1); // the exact filter's bucket
  trie.remove("a/b/c/d", 1);
  assert.equal(trie.nodeCount, 0);
});

Deno.test("SubscriptionTrie.hasWildcards follows the wildcard entries", () => {
  const trie = new SubscriptionTrie<number>();
  assert.equal(trie.hasWildcards, false);
  trie.add("a/b", 1, 1);
  assert.equal(trie.hasWildcards, false);
  trie.add("a/+", 1, 1);
  trie.add("a/+", 2, 1);
  assert.equal(trie.hasWildcards, true);
  trie.remove("a/+", 1);
  assert.equal(trie.hasWildcards, true);
  trie.remove("a/+", 2);
  assert.equal(trie.hasWildcards, false);
});

Deno.test("SubscriptionTrie.entries() lists every entry", () => {
  const trie = new SubscriptionTrie<number, string>();
  const entries: [string, string, number][] = [
    ["a/b", "x", 1],
    ["a/b", "y", 2],
    ["a/+", "x", 3],
    ["a/#", "x", 4],
    ["#", "z", 5],
    ["+", "z", 6],
    ["+/+/c", "z", 7],
    ["a//+", "z", 8],
    ["/#", "z", 9],
  ];
  for (const [filter, key, value] of entries) trie.add(filter, key, value);
  assert.deepEqual([...trie.entries()].sort((p, q) => p[2] - q[2]), entries);
});

Deno.test("SubscriptionTrie.match() agrees with a naive matcher on 10k random filters", () => {
  const random = prng(0x5eed);
  const trie = new SubscriptionTrie<string, number>();
  const reference = new Map<string, Map<number, string>>();
  for (let i = 0; i < 10_000; i++) {
    const filter = randomFilter(random);
    const key = Math.floor(random() * 16);
    const value = `${filter}|${key}|${i}`;
    const keys = reference.get(filter) ?? new Map<number, string>();
    reference.set(filter, keys);
    assert.equal(trie.add(filter, key, value), !keys.has(key));
    keys.set(key, value);
  }
  const check = () => {
    let size = 0;
    for (const keys of reference.values()) size += keys.size;
    assert.equal(trie.size, size);
    const filters = [...reference].map(([filter, keys]) => [filter.split("/"), keys] as const);
    for (let i = 0; i < 1_000; i++) {
      const topic = randomTopic(random);
      const levels = topic.split("/");
      const expected: string[] = [];
      for (const [filter, keys] of filters) {
        if (naiveMatchesLevels(filter, levels)) expected.push(...keys.values());
      }
      const out: string[] = [];
      trie.match(topic, out);
      assert.deepEqual(out.sort(), expected.sort(), topic);
    }
  };
  check();
  // Remove about half the entries, then check again.
  for (const [filter, keys] of reference) {
    for (const key of [...keys.keys()]) {
      if (random() < 0.5) continue;
      assert.equal(trie.remove(filter, key), true);
      keys.delete(key);
    }
    if (keys.size === 0) reference.delete(filter);
  }
  check();
  const listed = [...trie.entries()].map(([f, k, v]) => `${f}#${k}=${v}`).sort();
  const expected = [...reference].flatMap(([f, keys]) =>
    [...keys].map(([k, v]) => `${f}#${k}=${v}`)
  ).sort();
  assert.deepEqual(listed, expected);
  for (const [filter, keys] of reference) {
    for (const key of keys.keys()) assert.equal(trie.remove(filter, key), true);
  }
  assert.equal(trie.size, 0);
  assert.equal(trie.nodeCount, 0);
});
