import assert from "node:assert/strict";
import { RetainedIndex } from "../../src/topic/retained_index.ts";
import { MATCH_CASES, naiveMatchesLevels, prng, randomFilter, randomTopic } from "./_reference.ts";

const TOPICS = [
  "sport",
  "sport/",
  "sport/tennis",
  "sport/tennis/player1",
  "sport/tennis/player1/ranking",
  "sport/tennis/player1/score/wimbledon",
  "sport/tennis/player2",
  "sport/golf",
  "/finance",
  "finance",
  "/",
  "a//b",
  "a/b",
  "$SYS/monitor/Clients",
  "$SYS",
  "$",
  "ACCOUNTS",
];

function indexOf(topics: string[]): RetainedIndex<string> {
  const index = new RetainedIndex<string>();
  for (const topic of topics) index.set(topic, topic);
  return index;
}

function matchFilter(index: RetainedIndex<string>, filter: string): string[] {
  const out: string[] = [];
  index.matchFilter(filter, out);
  return out.sort();
}

Deno.test("RetainedIndex.matchFilter() follows the spec's wildcard examples [MQTT-4.7.1-1] [MQTT-4.7.1-2] (3.1.1: MQTT-4.7.1-2, MQTT-4.7.1-3)", () => {
  const index = indexOf(TOPICS);
  const cases: [filter: string, expected: string[]][] = [
    ["sport/tennis/player1/#", [
      "sport/tennis/player1",
      "sport/tennis/player1/ranking",
      "sport/tennis/player1/score/wimbledon",
    ]],
    ["sport/#", [
      "sport",
      "sport/",
      "sport/golf",
      "sport/tennis",
      "sport/tennis/player1",
      "sport/tennis/player1/ranking",
      "sport/tennis/player1/score/wimbledon",
      "sport/tennis/player2",
    ]],
    ["sport/tennis/+", ["sport/tennis/player1", "sport/tennis/player2"]],
    ["sport/+", ["sport/", "sport/golf", "sport/tennis"]],
    ["+/+", ["/", "/finance", "a/b", "sport/", "sport/golf", "sport/tennis"]],
    ["/+", ["/", "/finance"]],
    ["+", ["ACCOUNTS", "finance", "sport"]],
    ["+/tennis/#", [
      "sport/tennis",
      "sport/tennis/player1",
      "sport/tennis/player1/ranking",
      "sport/tennis/player1/score/wimbledon",
      "sport/tennis/player2",
    ]],
    ["a/+/b", ["a//b"]],
    ["sport/tennis/player1", ["sport/tennis/player1"]],
    ["Accounts", []],
    ["nothing/+", []],
  ];
  for (const [filter, expected] of cases) {
    assert.deepEqual(matchFilter(index, filter), expected, filter);
  }
});

Deno.test("RetainedIndex.matchFilter() follows the shared matching cases [MQTT-4.7.2-1] [MQTT-4.7.3-4]", () => {
  for (const cases of Object.values(MATCH_CASES)) {
    for (const [filter, matches, misses] of cases) {
      const index = indexOf([...matches, ...misses]);
      assert.deepEqual(matchFilter(index, filter), [...new Set(matches)].sort(), filter);
    }
  }
});

Deno.test("RetainedIndex.matchFilter() keeps '$' topics from leading wildcards [MQTT-4.7.2-1]", () => {
  const index = indexOf(TOPICS);
  const all = matchFilter(index, "#");
  assert.equal(all.length, TOPICS.length - 3);
  assert.ok(all.every((topic) => !topic.startsWith("$")));
  assert.deepEqual(matchFilter(index, "+/monitor/Clients"), []);
  assert.deepEqual(matchFilter(index, "$SYS/#"), ["$SYS", "$SYS/monitor/Clients"]);
  assert.deepEqual(matchFilter(index, "$SYS/monitor/+"), ["$SYS/monitor/Clients"]);
  assert.deepEqual(matchFilter(index, "$"), ["$"]);
});

Deno.test("RetainedIndex.set() replaces and get() reads by exact topic", () => {
  const index = new RetainedIndex<number>();
  assert.equal(index.set("a/b", 1), true);
  assert.equal(index.set("a/b", 2), false);
  assert.equal(index.set("a//b", 3), true);
  assert.equal(index.size, 2);
  assert.equal(index.get("a/b"), 2);
  assert.equal(index.get("a//b"), 3);
  assert.equal(index.get("a"), undefined);
  assert.equal(index.get("a/+"), undefined);
  const out: number[] = [];
  index.matchFilter("a/#", out);
  assert.deepEqual(out.sort(), [2, 3]);
});

Deno.test("RetainedIndex stores an undefined value as a value", () => {
  const index = new RetainedIndex<string | undefined>();
  index.set("a", undefined);
  assert.equal(index.size, 1);
  const out: (string | undefined)[] = [];
  index.matchFilter("+", out);
  index.matchFilter("a", out);
  assert.deepEqual(out, [undefined, undefined]);
});

Deno.test("RetainedIndex.delete() removes one topic and keeps its ancestors' values", () => {
  const index = indexOf(["a", "a/b", "a/b/c"]);
  assert.equal(index.delete("a/b"), true);
  assert.equal(index.delete("a/b"), false);
  assert.equal(index.delete("x"), false);
  assert.equal(index.size, 2);
  assert.deepEqual(matchFilter(index, "a/#"), ["a", "a/b/c"]);
  assert.deepEqual(matchFilter(index, "a/+"), []);
  assert.equal(index.nodeCount, 3); // "b" still leads to "c"
  index.delete("a/b/c");
  assert.equal(index.nodeCount, 1);
  assert.deepEqual(matchFilter(index, "#"), ["a"]);
});

Deno.test("RetainedIndex prunes emptied nodes so nodeCount returns to 0", () => {
  const index = indexOf(TOPICS);
  assert.ok(index.nodeCount > 0);
  for (const topic of TOPICS) assert.equal(index.delete(topic), true, topic);
  assert.equal(index.size, 0);
  assert.equal(index.nodeCount, 0);
  assert.deepEqual(matchFilter(index, "#"), []);
});

Deno.test("RetainedIndex.entries() lists every topic and value", () => {
  const index = indexOf(TOPICS);
  assert.deepEqual(
    [...index.entries()].sort(),
    TOPICS.map((topic) => [topic, topic]).sort(),
  );
});

Deno.test("RetainedIndex.matchFilter() agrees with a naive matcher on random topics", () => {
  const random = prng(0xbeef);
  const index = new RetainedIndex<string>();
  const reference = new Set<string>();
  for (let i = 0; i < 5_000; i++) {
    const topic = randomTopic(random);
    assert.equal(index.set(topic, topic), !reference.has(topic));
    reference.add(topic);
  }
  const check = () => {
    assert.equal(index.size, reference.size);
    const topics = [...reference].map((topic) => [topic, topic.split("/")] as const);
    for (let i = 0; i < 1_000; i++) {
      const filter = randomFilter(random);
      const levels = filter.split("/");
      const expected = topics.filter(([, t]) => naiveMatchesLevels(levels, t)).map(([t]) => t);
      assert.deepEqual(matchFilter(index, filter), expected.sort(), filter);
    }
  };
  check();
  for (const topic of [...reference]) {
    if (random() < 0.5) continue;
    assert.equal(index.delete(topic), true);
    reference.delete(topic);
  }
  check();
  for (const topic of reference) index.delete(topic);
  assert.equal(index.nodeCount, 0);
});
