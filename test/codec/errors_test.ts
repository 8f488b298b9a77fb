import assert from "node:assert";
import { malformed, MqttError, protocolError } from "../../src/codec/errors.ts";

Deno.test("MqttError carries its reason code and cause", () => {
  const cause = new Error("socket closed");
  const error = new MqttError(0x8e, "Session taken over: client reconnected", { cause });
  assert.ok(error instanceof Error);
  assert.strictEqual(error.name, "MqttError");
  assert.strictEqual(error.reasonCode, 0x8e);
  assert.strictEqual(error.cause, cause);
});

Deno.test("malformed() and protocolError() use 0x81 and 0x82", () => {
  assert.strictEqual(malformed("Invalid PUBLISH: QoS is 3").reasonCode, 0x81);
  assert.strictEqual(protocolError("Invalid SUBSCRIBE: no topic filter").reasonCode, 0x82);
});
