import assert from "node:assert/strict";
import { MqttError } from "../../src/codec/errors.ts";
import { ReasonCode } from "../../src/codec/reason_codes.ts";
import {
  isSysTopic,
  isWildcardFilter,
  MAX_TOPIC_BYTES,
  validateTopicFilter,
  validateTopicName,
} from "../../src/topic/validate.ts";

/** Asserts a validation result is an MqttError with `code` whose message contains `detail`. */
function assertInvalid(result: MqttError | undefined, code: number, detail: string): void {
  assert.ok(result instanceof MqttError, "expected an MqttError");
  assert.equal(result.reasonCode, code);
  assert.ok(result.message.includes(detail), `message ${JSON.stringify(result.message)}`);
}

Deno.test("validateTopicName() accepts the spec's example topic names [MQTT-4.7.3-4]", () => {
  for (
    const topic of [
      "sport/tennis/player1",
      "sport/tennis/player1/ranking",
      "/finance",
      "finance",
      "sport/",
      "/",
      "//",
      "a//b",
      "ACCOUNTS",
      "Accounts payable",
      "$SYS/monitor/Clients",
      "$share",
      "caf\u00e9/\u6e29\u5ea6/\u{1F321}",
    ]
  ) {
    assert.equal(validateTopicName(topic), undefined, topic);
  }
});

Deno.test("validateTopicName() rejects an empty topic [MQTT-4.7.3-1]", () => {
  assertInvalid(
    validateTopicName(""),
    ReasonCode.TopicNameInvalid,
    'Invalid topic name "": it is empty',
  );
});

Deno.test("validateTopicName() rejects wildcards [MQTT-4.7.0-1] [MQTT-3.3.2-2] (3.1.1: MQTT-4.7.1-1)", () => {
  for (const topic of ["+", "#", "a/+", "a/#", "a/b+", "sport/tennis#", "+/a"]) {
    assertInvalid(validateTopicName(topic), ReasonCode.TopicNameInvalid, "wildcard");
  }
});

Deno.test("validateTopicName() rejects the null character [MQTT-4.7.3-2]", () => {
  assertInvalid(
    validateTopicName("a/\u0000/b"),
    ReasonCode.TopicNameInvalid,
    'Invalid topic name "a/\\u0000/b": it contains the null character U+0000',
  );
});

Deno.test("validateTopicName() rejects a lone surrogate [MQTT-1.5.4-1] (3.1.1: MQTT-1.5.3-1)", () => {
  assertInvalid(validateTopicName("a\ud800"), ReasonCode.TopicNameInvalid, "lone surrogate");
  assertInvalid(validateTopicName("a\udc00b"), ReasonCode.TopicNameInvalid, "lone surrogate");
  assertInvalid(validateTopicName("\ud800\ud800"), ReasonCode.TopicNameInvalid, "index 0");
});

Deno.test("validateTopicName() limits the UTF-8 byte length to 65,535 [MQTT-4.7.3-3]", () => {
  assert.equal(validateTopicName("a".repeat(MAX_TOPIC_BYTES)), undefined);
  assertInvalid(
    validateTopicName("a".repeat(MAX_TOPIC_BYTES + 1)),
    ReasonCode.TopicNameInvalid,
    "it is 65536 bytes long, the maximum is 65535",
  );
  // A configured limit above the spec's does not lift it.
  assertInvalid(
    validateTopicName("a".repeat(MAX_TOPIC_BYTES + 1), { maxLength: 100_000 }),
    ReasonCode.TopicNameInvalid,
    "the maximum is 65535",
  );
});

Deno.test("validateTopicName() counts UTF-8 bytes, not UTF-16 units", () => {
  const cases: [topic: string, bytes: number][] = [
    ["a", 1],
    ["\u00e9", 2], // 2-byte sequence
    ["\u6e29", 3], // 3-byte sequence
    ["\uffff", 3],
    ["\u{1F321}", 4], // surrogate pair, 4-byte sequence
    ["a/\u00e9/\u6e29/\u{1F321}", 13],
  ];
  for (const [topic, bytes] of cases) {
    assert.equal(new TextEncoder().encode(topic).length, bytes);
    assert.equal(validateTopicName(topic, { maxLength: bytes }), undefined, topic);
    assertInvalid(
      validateTopicName(topic, { maxLength: bytes - 1 }),
      ReasonCode.TopicNameInvalid,
      `it is ${bytes} bytes long, the maximum is ${bytes - 1}`,
    );
  }
});

Deno.test("validateTopicName() enforces the configured level limit", () => {
  assert.equal(validateTopicName("a/b/c", { maxLevels: 3 }), undefined);
  assertInvalid(
    validateTopicName("a/b/c/", { maxLevels: 3 }),
    ReasonCode.TopicNameInvalid,
    "it has 4 levels, the maximum is 3",
  );
  assertInvalid(validateTopicName("//", { maxLevels: 2 }), ReasonCode.TopicNameInvalid, "3 levels");
});

Deno.test("validateTopicName() shortens a long topic in its message", () => {
  const error = validateTopicName(`${"x".repeat(100)}/+`);
  assert.ok(error instanceof MqttError);
  assert.equal(
    error.message,
    `Invalid topic name "${"x".repeat(61)}...": it contains the wildcard "+"`,
  );
});

Deno.test("validateTopicFilter() accepts the spec's example filters [MQTT-4.7.1-1] [MQTT-4.7.1-2] (3.1.1: MQTT-4.7.1-2, MQTT-4.7.1-3)", () => {
  for (
    const filter of [
      "#",
      "sport/#",
      "sport/tennis/player1/#",
      "/#",
      "+",
      "+/+",
      "/+",
      "sport/+",
      "sport/tennis/+",
      "+/tennis/#",
      "sport/+/player1",
      "+/monitor/Clients",
      "$SYS/#",
      "$SYS/monitor/+",
      "a//b",
      "//",
      "+//+",
      "$share/group/a/+",
    ]
  ) {
    assert.equal(validateTopicFilter(filter), undefined, filter);
  }
});

Deno.test("validateTopicFilter() rejects an empty filter as malformed (0x81) [MQTT-4.7.3-1]", () => {
  assertInvalid(
    validateTopicFilter(""),
    ReasonCode.MalformedPacket,
    'Invalid topic filter "": it is empty',
  );
});

Deno.test("validateTopicFilter() rejects '#' not at the end [MQTT-4.7.1-1] (3.1.1: MQTT-4.7.1-2)", () => {
  for (const filter of ["sport/tennis/#/ranking", "#/", "#/a", "a/#/"]) {
    assertInvalid(
      validateTopicFilter(filter),
      ReasonCode.MalformedPacket,
      '"#" must be the last level',
    );
  }
});

Deno.test("validateTopicFilter() rejects '#' sharing its level [MQTT-4.7.1-1] (3.1.1: MQTT-4.7.1-2)", () => {
  for (const filter of ["sport/tennis#", "a#", "a/##", "a/b#"]) {
    assertInvalid(
      validateTopicFilter(filter),
      ReasonCode.MalformedPacket,
      '"#" must occupy a whole level',
    );
  }
});

Deno.test("validateTopicFilter() rejects '+' sharing its level [MQTT-4.7.1-2] (3.1.1: MQTT-4.7.1-3)", () => {
  for (
    const filter of ["sport+", "+sport", "sport/+tennis", "sport/te+nnis", "+/ten+", "++", "a/++/b"]
  ) {
    assertInvalid(
      validateTopicFilter(filter),
      ReasonCode.MalformedPacket,
      '"+" must occupy a whole level',
    );
  }
});

Deno.test("validateTopicFilter() rejects the null character [MQTT-4.7.3-2]", () => {
  assertInvalid(validateTopicFilter("a/+/\u0000"), ReasonCode.MalformedPacket, "null character");
});

Deno.test("validateTopicFilter() rejects a lone surrogate [MQTT-1.5.4-1] (3.1.1: MQTT-1.5.3-1)", () => {
  assertInvalid(
    validateTopicFilter("+/\udfff"),
    ReasonCode.MalformedPacket,
    "lone surrogate at index 2",
  );
});

Deno.test("validateTopicFilter() limits the UTF-8 byte length [MQTT-4.7.3-3]", () => {
  assert.equal(validateTopicFilter(`${"a".repeat(MAX_TOPIC_BYTES - 2)}/#`), undefined);
  assertInvalid(
    validateTopicFilter(`${"a".repeat(MAX_TOPIC_BYTES - 1)}/#`),
    ReasonCode.TopicFilterInvalid,
    "it is 65536 bytes long, the maximum is 65535",
  );
  assert.equal(validateTopicFilter("\u{1F321}/+", { maxLength: 6 }), undefined);
  assertInvalid(
    validateTopicFilter("\u{1F321}/+", { maxLength: 5 }),
    ReasonCode.TopicFilterInvalid,
    "6 bytes",
  );
});

Deno.test("validateTopicFilter() enforces the configured level limit", () => {
  assert.equal(validateTopicFilter("+/+/#", { maxLevels: 3 }), undefined);
  assertInvalid(
    validateTopicFilter("+/+/+/#", { maxLevels: 3 }),
    ReasonCode.TopicFilterInvalid,
    "it has 4 levels, the maximum is 3",
  );
});

Deno.test("isWildcardFilter() tells filters with '+' or '#' apart", () => {
  const cases: [string, boolean][] = [
    ["a/b", false],
    ["a//b", false],
    ["$SYS/x", false],
    ["+", true],
    ["#", true],
    ["a/+/b", true],
    ["a/#", true],
  ];
  for (const [filter, expected] of cases) assert.equal(isWildcardFilter(filter), expected, filter);
});

Deno.test("isSysTopic() tells topics starting with '$' [MQTT-4.7.2-1]", () => {
  const cases: [string, boolean][] = [
    ["$SYS/broker/load", true],
    ["$", true],
    ["$share/g/a", true],
    ["SYS/$", false],
    ["/$SYS", false],
    ["", false],
  ];
  for (const [topic, expected] of cases) assert.equal(isSysTopic(topic), expected, topic);
});

Deno.test("validateTopicName() and validateTopicFilter() refuse control characters as malformed when asked", () => {
  const strict = { rejectControlCharacters: true };
  for (const c of ["\u0001", "\u001f", "\u007f", "\u0085", "\u009f"]) {
    assertInvalid(
      validateTopicName(`a${c}b`, strict),
      ReasonCode.MalformedPacket,
      "control character",
    );
    assertInvalid(
      validateTopicFilter(`a/${c}`, strict),
      ReasonCode.MalformedPacket,
      "control character",
    );
    assert.equal(validateTopicName(`a${c}b`), undefined, "allowed unless asked");
  }
  assert.equal(
    validateTopicName("a\u00a0b", strict),
    undefined,
    "U+00A0 is not a control character",
  );
});
