import assert from "node:assert";
import { decodePacket } from "../../src/codec/mod.ts";
import { bytes, frame, type PacketCase, str } from "./mod.ts";
import { v311Cases, v311Valid } from "./v311.ts";
import { v5Cases, v5Valid } from "./v5.ts";

const ALL: PacketCase[] = [...v311Cases, ...v5Cases];

Deno.test("vectors have unique identifiers with their protocol as prefix", () => {
  assert.strictEqual(new Set(ALL.map((v) => v.id)).size, ALL.length);
  for (const vector of ALL) {
    const prefix = vector.version === 5 ? "v5-" : /^v31(1)?-/;
    assert.match(vector.id, typeof prefix === "string" ? new RegExp(`^${prefix}`) : prefix);
  }
});

Deno.test("vectors have either an expected packet or an expected error", () => {
  for (const vector of ALL) {
    assert.notStrictEqual(vector.packet === undefined, vector.error === undefined, vector.id);
    if (vector.validationError !== undefined || vector.reencoded !== undefined) {
      assert.ok(vector.packet, vector.id);
    }
  }
});

Deno.test("valid vectors cover all 14 packet types of 3.1.1 and all 15 of MQTT 5", () => {
  const types = (cases: PacketCase[]) => new Set(cases.map((v) => v.packet!.type));
  assert.strictEqual(types(v311Valid).size, 14);
  assert.strictEqual(types(v5Valid).size, 15);
});

Deno.test("vectors hold complete packets (remaining length matches) unless the length is bad", () => {
  for (const vector of ALL) {
    if (vector.id.includes("remaining-length")) continue;
    assert.doesNotThrow(() => {
      try {
        decodePacket(vector.bytes, vector.version);
      } catch (error) {
        if ((error as Error).message.startsWith("Invalid packet:")) throw error;
      }
    }, vector.id);
  }
});

Deno.test("frame() computes the remaining length, multi-byte included", () => {
  assert.deepStrictEqual(frame(0xc0), bytes(0xc0, 0x00));
  assert.deepStrictEqual(
    frame(0x30, str("t"), new Uint8Array(200)).subarray(0, 3),
    bytes(0x30, 0xcb, 0x01),
  );
});
