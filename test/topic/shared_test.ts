import assert from "node:assert/strict";
import { MqttError } from "../../src/codec/errors.ts";
import { ReasonCode } from "../../src/codec/reason_codes.ts";
import { parseSharedFilter, QUEUE_GROUP, SharedGroup } from "../../src/topic/shared.ts";

Deno.test("parseSharedFilter() splits '$share/{ShareName}/{filter}' [MQTT-4.8.2-1]", () => {
  const cases: [filter: string, group: string, rest: string][] = [
    ["$share/consumer1/sport/tennis/+", "consumer1", "sport/tennis/+"],
    ["$share/consumer2/sport/tennis/+", "consumer2", "sport/tennis/+"],
    ["$share/g/#", "g", "#"],
    ["$share/g/+", "g", "+"],
    ["$share/g//", "g", "/"],
    ["$share/g/$SYS/#", "g", "$SYS/#"],
    ["$share/$queue/a", "$queue", "a"],
    ["$share/\u7ec4/a/b", "\u7ec4", "a/b"],
  ];
  for (const [filter, group, rest] of cases) {
    assert.deepEqual(parseSharedFilter(filter), { group, filter: rest }, filter);
  }
});

Deno.test("parseSharedFilter() reads legacy '$queue/{filter}' as the '$queue' group", () => {
  assert.equal(QUEUE_GROUP, "$queue");
  assert.deepEqual(parseSharedFilter("$queue/jobs/#"), { group: QUEUE_GROUP, filter: "jobs/#" });
  assert.deepEqual(parseSharedFilter("$queue/a"), { group: QUEUE_GROUP, filter: "a" });
  // The same group as `$share/$queue/...`, as in EMQX.
  assert.deepEqual(parseSharedFilter("$queue/a"), parseSharedFilter("$share/$queue/a"));
});

Deno.test("parseSharedFilter() returns undefined for a filter that is not shared", () => {
  for (const filter of ["a/b", "#", "$share", "$queue", "$sharex/g/a", "$SYS/#", "x/$share/g/a"]) {
    assert.equal(parseSharedFilter(filter), undefined, filter);
  }
});

Deno.test("parseSharedFilter() rejects malformed shared filters [MQTT-4.8.2-1] [MQTT-4.8.2-2]", () => {
  const cases: [filter: string, detail: string][] = [
    ["$share/", "the ShareName is empty"],
    ["$share//a", "the ShareName is empty"],
    ["$share/g", 'the ShareName must be followed by "/"'],
    ["$share/g+/a", 'the ShareName must not contain "+" or "#"'],
    ["$share/+/a", 'the ShareName must not contain "+" or "#"'],
    ["$share/#/a", 'the ShareName must not contain "+" or "#"'],
    ["$share/g#", 'the ShareName must not contain "+" or "#"'],
    ["$share/g\u0000/a", "the ShareName contains the null character U+0000"],
    ["$share/g/", "no topic filter follows the group"],
    ["$queue/", "no topic filter follows the group"],
  ];
  for (const [filter, detail] of cases) {
    const result = parseSharedFilter(filter);
    assert.ok(result instanceof MqttError, filter);
    assert.equal(result.reasonCode, ReasonCode.MalformedPacket);
    assert.equal(
      result.message,
      `Invalid shared subscription ${JSON.stringify(filter)}: ${detail}`,
    );
  }
});

Deno.test("parseSharedFilter() validates the filter after the group [MQTT-4.8.2-2]", () => {
  for (const filter of ["$share/g/a/#/b", "$share/g/a+", "$queue/a/#/b", "$queue/+a"]) {
    const result = parseSharedFilter(filter);
    assert.ok(result instanceof MqttError, filter);
    assert.equal(result.reasonCode, ReasonCode.MalformedPacket);
    assert.match(result.message, /^Invalid topic filter /);
  }
});

Deno.test("parseSharedFilter() applies the limits to the filter after the group", () => {
  assert.deepEqual(parseSharedFilter("$share/g/a/b", { maxLevels: 2 }), {
    group: "g",
    filter: "a/b",
  });
  const result = parseSharedFilter("$share/g/a/b/c", { maxLevels: 2 });
  assert.ok(result instanceof MqttError);
  assert.match(result.message, /it has 3 levels, the maximum is 2/);
});

function picks<M>(group: SharedGroup<M>, n: number, accept?: (m: M) => boolean): (M | undefined)[] {
  return Array.from({ length: n }, () => group.next(accept));
}

Deno.test("SharedGroup.next() is undefined for an empty group", () => {
  const group = new SharedGroup<string>();
  assert.equal(group.size, 0);
  assert.equal(group.next(), undefined);
  assert.equal(group.next(() => true), undefined);
});

Deno.test("SharedGroup.next() goes round-robin in insertion order", () => {
  const group = new SharedGroup<string>();
  for (const m of ["a", "b", "c"]) assert.equal(group.add(m), true);
  assert.equal(group.size, 3);
  assert.deepEqual(picks(group, 7), ["a", "b", "c", "a", "b", "c", "a"]);
  assert.deepEqual([...group], ["a", "b", "c"]);
});

Deno.test("SharedGroup.next() is fair: each member gets an equal share", () => {
  const group = new SharedGroup<number>();
  for (let m = 0; m < 7; m++) group.add(m);
  const counts = new Array(7).fill(0);
  for (let i = 0; i < 7 * 1000; i++) counts[group.next()!]++;
  assert.deepEqual(counts, new Array(7).fill(1000));
});

Deno.test("SharedGroup.add() ignores an existing member and keeps its turn", () => {
  const group = new SharedGroup<string>();
  group.add("a");
  group.add("b");
  assert.equal(group.next(), "a");
  assert.equal(group.add("a"), false);
  assert.equal(group.size, 2);
  assert.deepEqual(picks(group, 3), ["b", "a", "b"]);
});

Deno.test("SharedGroup.add() puts a new member at the end of the round", () => {
  const group = new SharedGroup<string>();
  group.add("a");
  group.add("b");
  group.add("c");
  assert.equal(group.next(), "a");
  group.add("d");
  assert.deepEqual(picks(group, 6), ["b", "c", "d", "a", "b", "c"]);
  assert.deepEqual([...group], ["a", "b", "c", "d"]);
});

Deno.test("SharedGroup.remove() hands a removed member's turn to its successor", () => {
  const group = new SharedGroup<string>();
  for (const m of ["a", "b", "c", "d"]) group.add(m);
  assert.equal(group.next(), "a");
  assert.equal(group.remove("b"), true); // b was next in turn
  assert.equal(group.remove("b"), false);
  assert.equal(group.size, 3);
  assert.deepEqual(picks(group, 4), ["c", "d", "a", "c"]);
  assert.equal(group.remove("a"), true); // a was the oldest member
  assert.deepEqual([...group], ["c", "d"]);
  assert.deepEqual(picks(group, 3), ["d", "c", "d"]);
  group.add("e");
  assert.deepEqual(picks(group, 4), ["c", "d", "e", "c"]);
});

Deno.test("SharedGroup.remove() of every member empties the group, which can refill", () => {
  const group = new SharedGroup<string>();
  group.add("a");
  group.add("b");
  group.next();
  assert.equal(group.remove("a"), true);
  assert.equal(group.remove("b"), true);
  assert.equal(group.size, 0);
  assert.equal(group.has("a"), false);
  assert.equal(group.next(), undefined);
  assert.deepEqual([...group], []);
  group.add("c");
  group.add("a");
  assert.deepEqual(picks(group, 3), ["c", "a", "c"]);
});

Deno.test("SharedGroup.next() skips members the predicate rejects", () => {
  const group = new SharedGroup<string>();
  for (const m of ["a", "b", "c", "d"]) group.add(m);
  const offline = new Set(["b", "c"]);
  const online = (m: string) => !offline.has(m);
  assert.deepEqual(picks(group, 4, online), ["a", "d", "a", "d"]);
  offline.delete("c");
  assert.deepEqual(picks(group, 3, online), ["a", "c", "d"]);
});

Deno.test("SharedGroup.next() falls back to the member in turn when all are rejected", () => {
  const group = new SharedGroup<string>();
  for (const m of ["a", "b", "c"]) group.add(m);
  const asked: string[] = [];
  const none = (m: string) => {
    asked.push(m);
    return false;
  };
  assert.equal(group.next(none), "a");
  assert.deepEqual(asked, ["a", "b", "c"]); // each member asked once
  assert.deepEqual(picks(group, 3, none), ["b", "c", "a"]);
});

Deno.test("SharedGroup keeps fair turns among accepted members", () => {
  const group = new SharedGroup<number>();
  for (let m = 0; m < 6; m++) group.add(m);
  const counts = new Array(6).fill(0);
  const even = (m: number) => m % 2 === 0;
  for (let i = 0; i < 3000; i++) counts[group.next(even)!]++;
  assert.deepEqual(counts, [1000, 0, 1000, 0, 1000, 0]);
});

Deno.test("SharedGroup compares members as Map keys do", () => {
  const group = new SharedGroup<object>();
  const a = {};
  group.add(a);
  assert.equal(group.add({}), true); // a distinct object
  assert.equal(group.has(a), true);
  assert.equal(group.size, 2);
});
