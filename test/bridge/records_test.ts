/**
 * Mappings and records of the Kafka bridge, without sockets: what a mapping accepts, how the
 * mappings document is read back, how a message becomes a record, and the outbox form of records.
 *
 * @module
 */

import assert from "node:assert/strict";
import { checkMapping, decodeMappings, encodeMappings } from "../../src/bridge/mapping.ts";
import {
  type BridgeRecord,
  decodeEntry,
  encodeEntry,
  renderRecord,
} from "../../src/bridge/records.ts";
import type { Message } from "../../src/domain/types.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function message(topic: string, payload: string, overrides: Partial<Message> = {}): Message {
  return {
    topic,
    payload: encoder.encode(payload),
    qos: 1,
    retain: false,
    properties: undefined,
    expiresAt: 0,
    origin: "c1",
    ...overrides,
  };
}

Deno.test("checkMapping fills defaults and names each field that is wrong", () => {
  const ok = checkMapping({ name: "a.b_c-1", filter: "x/+/#", kafkaTopic: "t.1" });
  assert.equal(ok.mapping?.key, "{topic}");
  const bad = checkMapping({
    name: "",
    filter: "x/#/y",
    kafkaTopic: "..",
    key: "{topic}{",
    format: "xml" as never,
    payloadEncoding: "hex" as never,
  });
  assert.deepEqual(bad.issues?.map((i) => i.field), [
    "name",
    "filter",
    "kafkaTopic",
    "key",
    "format",
    "payloadEncoding",
  ]);
  assert.match(
    checkMapping({ name: "s", filter: "$share/g/x", kafkaTopic: "t" }).issues![0].message,
    /without \$share\/ or \$queue\//,
  );
});

Deno.test("decodeMappings keeps the valid mappings of a document and names the others", () => {
  const good = checkMapping({ name: "ok", filter: "a", kafkaTopic: "a" }).mapping!;
  const document = encoder.encode(JSON.stringify({
    mappings: [good, { name: "bad", filter: "a/#/b", kafkaTopic: "b" }, good, 7],
  }));
  const { mappings, problems } = decodeMappings(document);
  assert.deepEqual(mappings, [good]);
  assert.equal(problems.length, 3);
  assert.match(problems[1], /a second mapping named "ok"/);
  assert.deepEqual(decodeMappings(encodeMappings([good])).mappings, [good]);
  assert.deepEqual(decodeMappings(encoder.encode("{")).mappings, []);
});

Deno.test("renderRecord: key template, raw value, user properties as headers", () => {
  const mapping = checkMapping({
    name: "m",
    filter: "#",
    kafkaTopic: "out",
    key: "{username}:{clientId}:{topic}",
  }).mapping!;
  const record = renderRecord(
    mapping,
    message("$queue/a/b", "v", { properties: { userProperties: [["k", "1"], ["k", "2"]] } }),
    "a/b",
    { clientId: "dev", username: "ann" },
    1_000,
  );
  assert.deepEqual(
    [record.topic, decoder.decode(record.key!), decoder.decode(record.value), record.headers],
    ["out", "ann:dev:a/b", "v", [["k", "1"], ["k", "2"]]],
  );
  const noKey = renderRecord(
    { ...mapping, key: "{username}", headers: false },
    message("a", "v", {
      properties: { userProperties: [["k", "1"]] },
    }),
    "a",
    undefined,
    1_000,
  );
  assert.deepEqual([noKey.key, noKey.headers], [null, []]);
});

Deno.test("the outbox form of records reads back exactly, null keys and repeated headers included", () => {
  const records: BridgeRecord[] = [
    {
      mapping: "m1",
      topic: "t",
      key: encoder.encode("k ✓"),
      value: new Uint8Array([0, 255, 1]),
      headers: [["a", "1"], ["a", "2"], ["ü", ""]],
      timestamp: 1_700_000_000_123,
    },
    { mapping: "m2", topic: "u", key: null, value: new Uint8Array(), headers: [], timestamp: 0 },
  ];
  const decoded = decodeEntry(encodeEntry(records));
  assert.deepEqual(
    decoded.map((r) => ({ ...r, key: r.key && [...r.key], value: [...r.value] })),
    records.map((r) => ({ ...r, key: r.key && [...r.key], value: [...r.value] })),
  );
  assert.throws(() => decodeEntry(new Uint8Array([2, 0, 0, 0, 0])), RangeError);
  assert.throws(() => decodeEntry(encodeEntry(records).subarray(0, 20)), RangeError);
});
