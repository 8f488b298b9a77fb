import assert from "node:assert";
import { connackReturnCodeFor311 } from "../../src/codec/reason_codes.ts";
import {
  validateAuth,
  validateConnect,
  validateDisconnect,
  validatePacket,
  validatePubAckLike,
  validatePublish,
  validateSubscribe,
  validateUnsubscribe,
} from "../../src/codec/validate.ts";
import {
  ack,
  auth,
  connack,
  connect,
  disconnect,
  type PacketCase,
  publish,
  suback,
  subscribe,
  subscription,
  unsuback,
  unsubscribe,
} from "../vectors/mod.ts";
import { v311Cases } from "../vectors/v311.ts";
import { v5Cases } from "../vectors/v5.ts";
import { tags } from "./_assert.ts";

const DECODABLE: PacketCase[] = [...v311Cases, ...v5Cases].filter((v) => v.packet !== undefined);

for (const vector of DECODABLE) {
  const verb = vector.validationError === undefined ? "accepts" : "refuses";
  Deno.test(`validatePacket() ${verb} ${vector.id}: ${vector.desc}${tags(vector.spec)}`, () => {
    assert.strictEqual(
      validatePacket(vector.packet!, vector.version)?.reasonCode,
      vector.validationError,
    );
  });
}

Deno.test("validateConnect() maps an identifier refusal to 3.1.1 return code 2 [MQTT-3.1.3-8]", () => {
  const error = validateConnect(connect({ cleanStart: false, clientId: "" }));
  assert.strictEqual(connackReturnCodeFor311(error!.reasonCode), 2);
});

Deno.test("validateConnect() accepts an empty client identifier with clean start under MQTT 5", () => {
  assert.strictEqual(
    validateConnect(connect({ protocolVersion: 5, cleanStart: false, clientId: "" })),
    undefined,
  );
});

Deno.test("validateConnect() accepts byte flags of 0 and 1", () => {
  for (const flag of [0, 1]) {
    const properties = { requestProblemInformation: flag, requestResponseInformation: flag };
    assert.strictEqual(validateConnect(connect({ protocolVersion: 5, properties })), undefined);
  }
});

Deno.test("validatePublish() ignores MQTT 5 property rules under 3.1.1", () => {
  assert.strictEqual(validatePublish(publish({ topic: "" }), 4), undefined);
});

Deno.test("validatePublish() accepts an empty topic with a topic alias [section 3.3.2.1]", () => {
  assert.strictEqual(
    validatePublish(publish({ topic: "", properties: { topicAlias: 1 } }), 5),
    undefined,
  );
});

Deno.test("validatePublish() refuses a subscription identifier from a client [MQTT-3.3.4-6]", () => {
  const packet = publish({ properties: { subscriptionIdentifiers: [1] } });
  assert.strictEqual(validatePublish(packet, 5)?.reasonCode, 0x82);
});

Deno.test("validatePubAckLike() accepts every listed reason code [MQTT-3.4.2-1] [MQTT-3.6.2-1]", () => {
  for (const code of [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99]) {
    assert.strictEqual(validatePubAckLike(ack(4, 1, code), 5), undefined);
    assert.strictEqual(validatePubAckLike(ack(5, 1, code), 5), undefined);
  }
  for (const code of [0x00, 0x92]) {
    assert.strictEqual(validatePubAckLike(ack(6, 1, code), 5), undefined);
    assert.strictEqual(validatePubAckLike(ack(7, 1, code), 5), undefined);
  }
});

Deno.test("validateSubscribe() accepts No Local on a non-shared subscription [MQTT-3.8.3-4]", () => {
  const packet = subscribe(1, [subscription("$sharex/a", 0, { noLocal: true })]);
  assert.strictEqual(validateSubscribe(packet, 5), undefined);
});

Deno.test("validateUnsubscribe() accepts a non-zero packet identifier", () => {
  assert.strictEqual(validateUnsubscribe(unsubscribe(1, ["a"])), undefined);
});

Deno.test("validateDisconnect() accepts every DISCONNECT reason code [MQTT-3.14.2-1]", () => {
  const codes = [0x00, 0x04, ...Array.from({ length: 0x23 }, (_, i) => 0x80 + i)]
    .filter((code) => ![0x84, 0x85, 0x86, 0x88, 0x8a, 0x8c, 0x91, 0x92].includes(code));
  for (const code of codes) assert.strictEqual(validateDisconnect(disconnect(code)), undefined);
  assert.strictEqual(validateDisconnect(disconnect(0x84))?.reasonCode, 0x82);
});

Deno.test("validateAuth() accepts AUTH with a method and an AUTH reason code [MQTT-3.15.2-1]", () => {
  for (const code of [0x00, 0x18, 0x19]) {
    assert.strictEqual(validateAuth(auth(code, { authenticationMethod: "M" })), undefined);
  }
});

Deno.test("validatePacket() has nothing to check in server-only packets and PINGREQ", () => {
  for (const packet of [connack(), suback(1, [0]), unsuback(1), { type: 12 as const }]) {
    assert.strictEqual(validatePacket(packet, 5), undefined);
  }
});
