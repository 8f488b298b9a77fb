import assert from "node:assert";
import * as codec from "../../src/codec/mod.ts";

Deno.test("mod.ts exports the codec surface the broker uses", () => {
  const functions = [
    "decodePacket",
    "encodePacket",
    "encodePublishHeader",
    "publishPacketIdOffset",
    "setPublishPacketId",
    "validatePacket",
    "connackReturnCodeFor311",
    "PacketDecoder",
    "MqttError",
  ] as const;
  for (const name of functions) assert.strictEqual(typeof codec[name], "function", name);
  assert.strictEqual(codec.PacketType.PUBLISH, 3);
  assert.strictEqual(codec.ReasonCode.PacketTooLarge, 0x95);
  assert.strictEqual(codec.PROPERTY_DEFINITIONS.length, 27);
});
