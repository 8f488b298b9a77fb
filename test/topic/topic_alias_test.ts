import assert from "node:assert/strict";
import { MqttError } from "../../src/codec/errors.ts";
import { ReasonCode } from "../../src/codec/reason_codes.ts";
import { InboundTopicAliases, OutboundTopicAliases } from "../../src/topic/topic_alias.ts";

function assertError(result: string | MqttError, code: number, message: string): void {
  assert.ok(result instanceof MqttError, `expected an MqttError, got ${JSON.stringify(result)}`);
  assert.equal(result.reasonCode, code);
  assert.equal(result.message, message);
}

Deno.test("InboundTopicAliases.resolve() maps an alias, then resolves an empty topic with it", () => {
  const aliases = new InboundTopicAliases(10);
  assert.equal(aliases.resolve(1, "sensors/a/temperature"), "sensors/a/temperature");
  assert.equal(aliases.resolve(1, ""), "sensors/a/temperature");
  assert.equal(aliases.resolve(10, "b"), "b");
  assert.equal(aliases.resolve(10, ""), "b");
  assert.equal(aliases.resolve(1, ""), "sensors/a/temperature");
});

Deno.test("InboundTopicAliases.resolve() replaces a mapping with a new topic", () => {
  const aliases = new InboundTopicAliases(2);
  aliases.resolve(2, "a");
  assert.equal(aliases.resolve(2, "b"), "b");
  assert.equal(aliases.resolve(2, ""), "b");
});

Deno.test("InboundTopicAliases.resolve() passes a topic without an alias through", () => {
  const aliases = new InboundTopicAliases(0);
  assert.equal(aliases.resolve(undefined, "a/b"), "a/b");
});

Deno.test("InboundTopicAliases.resolve() rejects alias 0 with 0x94 [MQTT-3.3.2-8]", () => {
  const aliases = new InboundTopicAliases(10);
  assertError(
    aliases.resolve(0, "a"),
    ReasonCode.TopicAliasInvalid,
    "Cannot resolve topic alias 0: it must be from 1 to 10",
  );
});

Deno.test("InboundTopicAliases.resolve() rejects an alias above the maximum with 0x94 [MQTT-3.3.2-9]", () => {
  const aliases = new InboundTopicAliases(10);
  assertError(
    aliases.resolve(11, "a"),
    ReasonCode.TopicAliasInvalid,
    "Cannot resolve topic alias 11: it must be from 1 to 10",
  );
  assertError(
    aliases.resolve(11, ""),
    ReasonCode.TopicAliasInvalid,
    "Cannot resolve topic alias 11: it must be from 1 to 10",
  );
});

Deno.test("InboundTopicAliases.resolve() rejects every alias when the maximum is 0 [MQTT-3.2.2-18]", () => {
  const aliases = new InboundTopicAliases(0);
  assertError(
    aliases.resolve(1, "a"),
    ReasonCode.TopicAliasInvalid,
    "Cannot resolve topic alias 1: the server accepts no topic aliases",
  );
});

Deno.test("InboundTopicAliases.resolve() accepts every alias from 1 to the maximum [MQTT-3.3.2-12]", () => {
  const aliases = new InboundTopicAliases(65535);
  for (const alias of [1, 2, 1000, 65534, 65535]) {
    assert.equal(aliases.resolve(alias, `t/${alias}`), `t/${alias}`);
  }
  for (const alias of [1, 2, 1000, 65534, 65535]) {
    assert.equal(aliases.resolve(alias, ""), `t/${alias}`);
  }
});

Deno.test("InboundTopicAliases.resolve() rejects an empty topic with an unmapped alias with 0x82", () => {
  const aliases = new InboundTopicAliases(10);
  aliases.resolve(1, "a");
  assertError(
    aliases.resolve(2, ""),
    ReasonCode.ProtocolError,
    "Cannot resolve topic alias 2: it has no topic mapped",
  );
});

Deno.test("InboundTopicAliases.resolve() rejects an empty topic without an alias with 0x82", () => {
  const aliases = new InboundTopicAliases(10);
  assertError(
    aliases.resolve(undefined, ""),
    ReasonCode.ProtocolError,
    "Cannot resolve topic: the topic name is empty and there is no topic alias",
  );
});

Deno.test("InboundTopicAliases starts empty on every connection [MQTT-3.3.2-7]", () => {
  const first = new InboundTopicAliases(5);
  first.resolve(1, "a");
  const second = new InboundTopicAliases(5);
  assert.ok(second.resolve(1, "") instanceof MqttError);
});

Deno.test("InboundTopicAliases() and OutboundTopicAliases() reject a maximum outside 0..65535", () => {
  for (const maximum of [-1, 65536, 1.5, NaN]) {
    assert.throws(() => new InboundTopicAliases(maximum), RangeError);
    assert.throws(() => new OutboundTopicAliases(maximum), RangeError);
  }
  assert.throws(
    () => new OutboundTopicAliases(-1),
    {
      message:
        "Cannot create topic alias table: maximum must be an integer from 0 to 65535, got -1",
    },
  );
});

Deno.test("OutboundTopicAliases.lookup() sends the topic once, then only the alias", () => {
  const aliases = new OutboundTopicAliases(3);
  assert.deepEqual(aliases.lookup("a"), { alias: 1, isNew: true });
  assert.deepEqual(aliases.lookup("a"), { alias: 1, isNew: false });
  assert.deepEqual(aliases.lookup("b"), { alias: 2, isNew: true });
  assert.deepEqual(aliases.lookup("a"), { alias: 1, isNew: false });
  assert.deepEqual(aliases.lookup("b"), { alias: 2, isNew: false });
});

Deno.test("OutboundTopicAliases.lookup() returns nothing when the client takes no aliases", () => {
  const aliases = new OutboundTopicAliases(0);
  assert.equal(aliases.lookup("a"), undefined);
  assert.equal(aliases.lookup("a"), undefined);
});

Deno.test("OutboundTopicAliases.lookup() never exceeds the client's maximum [MQTT-3.3.2-11]", () => {
  const aliases = new OutboundTopicAliases(5);
  for (let i = 0; i < 1000; i++) {
    const assignment = aliases.lookup(`t/${i % 37}`);
    assert.ok(assignment !== undefined);
    assert.ok(assignment.alias >= 1 && assignment.alias <= 5, `alias ${assignment.alias}`);
  }
});

Deno.test("OutboundTopicAliases.lookup() reassigns the least recently used alias when full", () => {
  const aliases = new OutboundTopicAliases(3);
  aliases.lookup("a"); // 1
  aliases.lookup("b"); // 2
  aliases.lookup("c"); // 3
  aliases.lookup("a"); // a is now the most recently used; b the least
  assert.deepEqual(aliases.lookup("d"), { alias: 2, isNew: true });
  assert.deepEqual(aliases.lookup("b"), { alias: 3, isNew: true }); // c was least recent
  assert.deepEqual(aliases.lookup("a"), { alias: 1, isNew: false });
  assert.deepEqual(aliases.lookup("d"), { alias: 2, isNew: false });
  assert.deepEqual(aliases.lookup("c"), { alias: 3, isNew: true }); // b, just set, was least recent
});

Deno.test("OutboundTopicAliases.lookup() keeps a consistent client-side mapping", () => {
  // Replays the assignments on a model of the client's table: every alias-only PUBLISH must
  // resolve to the topic the broker meant.
  const aliases = new OutboundTopicAliases(4);
  const client = new InboundTopicAliases(4);
  let state = 7;
  for (let i = 0; i < 2000; i++) {
    state = (state * 1103515245 + 12345) % 2147483648;
    const topic = `t/${state % 9}`;
    const assignment = aliases.lookup(topic)!;
    assert.equal(client.resolve(assignment.alias, assignment.isNew ? topic : ""), topic);
  }
});

Deno.test("OutboundTopicAliases.lookup() returns a shared frozen object on a hit", () => {
  const aliases = new OutboundTopicAliases(2);
  aliases.lookup("a");
  const hit = aliases.lookup("a");
  assert.equal(aliases.lookup("a"), hit);
  assert.ok(Object.isFrozen(hit));
});
