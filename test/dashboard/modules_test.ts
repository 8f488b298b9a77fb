/**
 * The dashboard's browser modules that need no DOM, run under Deno: formatting, the payload
 * views, the sample history and its rates, the chart's axis maximum.
 *
 * @module
 */

import assert from "node:assert/strict";
import { roundUp } from "../../dashboard/js/chart.js";
import {
  formatBytes,
  formatDuration,
  formatMs,
  formatRate,
  nameList,
  prefixFilter,
  protocolName,
} from "../../dashboard/js/format.js";
import { History } from "../../dashboard/js/history.js";
import {
  base64ToBytes,
  bestView,
  HEX_DUMP_LIMIT,
  hexDump,
  prettyJson,
  textOf,
} from "../../dashboard/js/payload.js";

Deno.test("dashboard formats protocol levels, rates, bytes, durations and lag", () => {
  assert.deepEqual([3, 4, 5].map(protocolName), ["3.1", "3.1.1", "5.0"]);
  assert.deepEqual([undefined, 0, 2.345, 1234.4].map(formatRate), ["–", "0.0", "2.3", "1,234"]);
  assert.deepEqual([512, 1536, 20 * 1024 * 1024].map(formatBytes), ["512 B", "1.5 KiB", "20 MiB"]);
  assert.deepEqual([0, 59, 61, 3_725, 90_061].map(formatDuration), [
    "0s",
    "59s",
    "1m 1s",
    "1h 2m",
    "1d 1h",
  ]);
  assert.deepEqual([0, 0.421, 12.6].map(formatMs), ["0 ms", "0.42 ms", "13 ms"]);
});

Deno.test("dashboard turns a topic prefix into a retained filter, and a list into names", () => {
  assert.equal(prefixFilter(""), "#");
  assert.equal(prefixFilter(" sensors "), "sensors/#");
  assert.equal(prefixFilter("sensors/"), "sensors/#");
  assert.equal(prefixFilter("sensors/+/temp"), "sensors/+/temp");
  assert.deepEqual(nameList(" alice, ,bob "), ["alice", "bob"]);
  assert.equal(nameList(" , "), undefined);
});

Deno.test("dashboard shows a payload as text, pretty JSON or a bounded hex dump", () => {
  const json = new TextEncoder().encode('{"a":[1,2]}');
  assert.equal(textOf(json), '{"a":[1,2]}');
  assert.equal(prettyJson(textOf(json)), '{\n  "a": [\n    1,\n    2\n  ]\n}');
  assert.equal(bestView(json), "json");
  assert.equal(bestView(new TextEncoder().encode("online")), "text");
  const binary = base64ToBytes("f0VMRgIBAQA=");
  assert.deepEqual([...binary], [0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]);
  assert.equal(textOf(new Uint8Array([0xff, 0xfe])), undefined);
  assert.equal(bestView(new Uint8Array([0xff, 0xfe])), "hex");
  assert.equal(
    hexDump(new TextEncoder().encode("Hello, MQTT world!")),
    "00000000  48 65 6c 6c 6f 2c 20 4d  51 54 54 20 77 6f 72 6c  |Hello, MQTT worl|\n" +
      "00000010  64 21                                             |d!|",
  );
  const large = hexDump(new Uint8Array(HEX_DUMP_LIMIT + 100));
  assert.equal(large.split("\n").length, HEX_DUMP_LIMIT / 16 + 1);
  assert.match(large, /… 100 more bytes not shown$/);
});

Deno.test("dashboard history gives per-second rates, skips restarts, and stays bounded", () => {
  const history = new History(60_000, 4);
  history.record(0, { in: 0, lag: 1 });
  history.record(2_000, { in: 10, lag: 2 });
  history.record(2_000, { in: 99, lag: 9 }); // Not newer: ignored.
  history.record(4_000, { in: 30, lag: 3 });
  assert.deepEqual(history.rate("in"), [[2_000, 5], [4_000, 10]]);
  assert.equal(history.latestRate("in"), 10);
  history.record(5_000, { in: 2, lag: 4 }); // The broker restarted: no point for this interval.
  assert.deepEqual(history.rate("in"), [[2_000, 5], [4_000, 10]]);
  history.record(6_000, { in: 4, lag: 5 });
  assert.equal(history.size, 4);
  assert.deepEqual(history.gauge("lag"), [[2_000, 2], [4_000, 3], [5_000, 4], [6_000, 5]]);
  history.record(70_000, { in: 4, lag: 6 });
  assert.deepEqual(history.gauge("lag"), [[70_000, 6]]);
  assert.equal(new History(1, 1).latestRate("in"), undefined);
});

Deno.test("dashboard chart's axis tops out at 1, 2 or 5 times a power of ten", () => {
  assert.deepEqual([0, 0.3, 1, 1.2, 3, 7, 10, 43, 0.004].map(roundUp), [
    1,
    0.5,
    1,
    2,
    5,
    10,
    10,
    50,
    0.005,
  ]);
});
