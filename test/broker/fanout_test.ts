import assert from "node:assert/strict";
import type { Message } from "../../src/backbone/backbone.ts";
import { FanoutEncoder } from "../../src/broker/fanout.ts";
import {
  decodePacket,
  encodePacket,
  PacketType,
  type Properties,
  type PublishPacket,
  type QoS,
  SlabAllocator,
} from "../../src/codec/mod.ts";

const encoder = new TextEncoder();

const PROPERTIES: Properties = {
  payloadFormatIndicator: 1,
  contentType: "application/json",
  responseTopic: "replies/\u00e9",
  correlationData: new Uint8Array([0, 1, 2, 255]),
  userProperties: [["trace", "abc"], ["trace", "def"]],
};

function message(topic: string, payload: Uint8Array | string, properties?: Properties): Message {
  return {
    topic,
    payload: typeof payload === "string" ? encoder.encode(payload) : payload,
    qos: 2,
    retain: true,
    properties,
    expiresAt: 0,
    origin: "publisher",
  };
}

/** What the encoder must produce: the plain codec's bytes for the same PUBLISH. */
function expected(
  m: Message,
  v5: boolean,
  qos: QoS,
  retain: boolean,
  packetId: number,
): Uint8Array {
  return encodePacket({
    type: PacketType.PUBLISH,
    dup: false,
    qos,
    retain,
    topic: m.topic,
    packetId: qos === 0 ? 0 : packetId,
    properties: v5 ? m.properties : undefined,
    payload: m.payload,
  }, v5 ? 5 : 4);
}

function decodePublish(bytes: Uint8Array, v5: boolean): PublishPacket {
  const packet = decodePacket(bytes, v5 ? 5 : 4);
  assert.equal(packet.type, PacketType.PUBLISH);
  return packet as PublishPacket;
}

/** The Remaining Length of an encoded packet and how many bytes encode it. */
function remainingLength(bytes: Uint8Array): { value: number; size: number } {
  let value = 0;
  let size = 0;
  let byte: number;
  do {
    byte = bytes[1 + size];
    value += (byte & 0x7f) * 128 ** size;
    size++;
  } while (byte & 0x80);
  return { value, size };
}

const SHAPES: [v5: boolean, qos: QoS, retain: boolean][] = [];
for (const v5 of [false, true]) {
  for (const qos of [0, 1, 2] as QoS[]) {
    for (const retain of [false, true]) SHAPES.push([v5, qos, retain]);
  }
}

function shapeName([v5, qos, retain]: [boolean, QoS, boolean]): string {
  return `${v5 ? "v5" : "v3.1.1"} QoS ${qos}${retain ? " retain" : ""}`;
}

Deno.test("FanoutEncoder.encode() produces encodePacket()'s bytes for every wire shape", () => {
  const m = message("sensors/kitchen/temp", '{"c":21.5}', PROPERTIES);
  const fanout = new FanoutEncoder();
  for (const shape of SHAPES) {
    const [v5, qos, retain] = shape;
    // Twice: the encoding call and the cached (patched) one.
    for (const packetId of [0x1234, 0x0102]) {
      assert.deepEqual(
        fanout.encode(m, v5, qos, retain, packetId),
        expected(m, v5, qos, retain, packetId),
        `${shapeName(shape)}, packet id ${packetId}`,
      );
    }
  }
});

Deno.test("FanoutEncoder.encode() leaves properties out under 3.1.1", () => {
  const m = message("t", "p", PROPERTIES);
  const fanout = new FanoutEncoder();
  const packet = decodePublish(fanout.encode(m, false, 1, false, 9), false);
  assert.equal(packet.properties, undefined);
  const v5 = decodePublish(fanout.encode(m, true, 1, false, 9), true);
  assert.deepEqual(v5.properties?.userProperties, PROPERTIES.userProperties);
  assert.equal(v5.properties?.contentType, PROPERTIES.contentType);
});

Deno.test("FanoutEncoder.encode() returns the same QoS 0 buffer to every subscriber (encode once)", () => {
  const m = message("a/b", "payload", PROPERTIES);
  const fanout = new FanoutEncoder();
  for (const v5 of [false, true]) {
    for (const retain of [false, true]) {
      const first = fanout.encode(m, v5, 0, retain, 0);
      for (let i = 0; i < 5; i++) assert.equal(fanout.encode(m, v5, 0, retain, 0), first);
      // The packet id argument means nothing at QoS 0.
      assert.equal(fanout.encode(m, v5, 0, retain, 77), first);
    }
  }
  assert.notEqual(fanout.encode(m, false, 0, false, 0), fanout.encode(m, true, 0, false, 0));
  assert.notEqual(fanout.encode(m, true, 0, false, 0), fanout.encode(m, true, 0, true, 0));
});

Deno.test("FanoutEncoder.encode() patches each QoS 1/2 copy with its own packet id [MQTT-2.2.1-4]", () => {
  const m = message("jobs/42", "work", PROPERTIES);
  const fanout = new FanoutEncoder();
  const ids = [1, 2, 0xff, 0x100, 0x7fff, 0x8000, 0xfffe, 0xffff];
  for (const v5 of [false, true]) {
    for (const qos of [1, 2] as QoS[]) {
      const copies = ids.map((id) => fanout.encode(m, v5, qos, false, id));
      // Decode after every copy was made: a later copy must not change an earlier one.
      copies.forEach((bytes, i) => {
        const packet = decodePublish(bytes, v5);
        assert.equal(packet.packetId, ids[i]);
        assert.equal(packet.qos, qos);
        assert.equal(packet.retain, false);
        assert.equal(packet.dup, false);
        assert.equal(packet.topic, "jobs/42");
        assert.equal(new TextDecoder().decode(packet.payload), "work");
        assert.deepEqual(bytes, expected(m, v5, qos, false, ids[i]));
      });
      assert.equal(new Set(copies).size, copies.length, "every copy is its own buffer");
    }
  }
});

Deno.test("FanoutEncoder.encode() with a slab allocator gives every subscriber bytes no later copy changes", () => {
  // A tiny slab, so that copies come from several slabs and from buffers of their own.
  const fanout = new FanoutEncoder({ allocator: new SlabAllocator({ slabSize: 64 }) });
  for (const payload of ["w", "x".repeat(40)]) {
    const m = message("jobs/42", payload, PROPERTIES);
    const ids = [1, 2, 3, 0xffff];
    for (const v5 of [false, true]) {
      const copies = ids.map((id) => fanout.encode(m, v5, 1, false, id));
      copies.forEach((bytes, i) => assert.deepEqual(bytes, expected(m, v5, 1, false, ids[i])));
      assert.deepEqual(fanout.encode(m, v5, 0, false, 0), expected(m, v5, 0, false, 0));
    }
  }
});

Deno.test("FanoutEncoder.encode() starts over for a new message", () => {
  const fanout = new FanoutEncoder();
  const first = message("a", "one");
  const second = message("a/much/longer/topic/name", "two");
  const q0 = fanout.encode(first, true, 0, false, 0);
  fanout.encode(first, true, 1, false, 1);
  fanout.encode(first, true, 1, false, 2);
  const next = fanout.encode(second, true, 0, false, 0);
  assert.notEqual(next, q0);
  assert.deepEqual(next, expected(second, true, 0, false, 0));
  // The packet id moves with the topic length: the cached offset must not carry over.
  fanout.encode(second, true, 1, false, 3);
  const copy = fanout.encode(second, true, 1, false, 0xabcd);
  assert.deepEqual(copy, expected(second, true, 1, false, 0xabcd));
  assert.equal(decodePublish(copy, true).packetId, 0xabcd);
  // An equal but distinct message object is a new message too.
  const again = message("a", "one");
  assert.notEqual(fanout.encode(again, true, 0, false, 0), q0);
  assert.deepEqual(fanout.encode(again, true, 0, false, 0), q0);
});

Deno.test("FanoutEncoder.encode() handles topics with multi-byte UTF-8", () => {
  const topic = "temp\u00e9rature/\u00b0C/\u6e29\u5ea6/\u{1f600}";
  assert.notEqual(encoder.encode(topic).length, topic.length);
  const m = message(topic, "x", PROPERTIES);
  const fanout = new FanoutEncoder();
  for (const shape of SHAPES) {
    const [v5, qos, retain] = shape;
    for (const packetId of [0x0a0b, 0xfffe]) {
      const bytes = fanout.encode(m, v5, qos, retain, packetId);
      assert.deepEqual(bytes, expected(m, v5, qos, retain, packetId), shapeName(shape));
      const packet = decodePublish(bytes, v5);
      assert.equal(packet.topic, topic);
      assert.equal(packet.packetId, qos === 0 ? 0 : packetId);
    }
  }
});

Deno.test("FanoutEncoder.encode() handles Remaining Lengths across the 1-4 byte boundaries", () => {
  const targets = [127, 128, 16_383, 16_384, 2_097_151, 2_097_152];
  const sizes = [1, 2, 2, 3, 3, 4];
  for (const v5 of [false, true]) {
    for (const qos of [0, 1, 2] as QoS[]) {
      const topic = "boundary/\u00fc";
      const properties = v5 ? PROPERTIES : undefined;
      const overhead = remainingLength(expected(message(topic, "", properties), v5, qos, false, 1));
      targets.forEach((target, i) => {
        const payload = new Uint8Array(target - overhead.value);
        for (let j = 0; j < payload.length; j++) payload[j] = j & 0xff;
        const m = message(topic, payload, properties);
        const fanout = new FanoutEncoder();
        const first = fanout.encode(m, v5, qos, true, 0x1111);
        const second = fanout.encode(m, v5, qos, true, 0x2222);
        const label = `${v5 ? "v5" : "v3.1.1"} QoS ${qos}, remaining length ${target}`;
        assert.deepEqual(remainingLength(first), { value: target, size: sizes[i] }, label);
        assert.deepEqual(first, expected(m, v5, qos, true, 0x1111), label);
        assert.deepEqual(second, expected(m, v5, qos, true, 0x2222), label);
        const packet = decodePublish(second, v5);
        assert.equal(packet.packetId, qos === 0 ? 0 : 0x2222, label);
        assert.equal(packet.payload.length, payload.length, label);
        if (qos > 0) assert.equal(decodePublish(first, v5).packetId, 0x1111, label);
      });
    }
  }
});

Deno.test("FanoutEncoder forwards a live QoS 0 message's received bytes unchanged to subscribers at its protocol level", () => {
  const fanout = new FanoutEncoder({ allocator: new SlabAllocator() });
  for (const v5 of [false, true]) {
    const live: Message = {
      ...message("a/b", "live", v5 ? PROPERTIES : undefined),
      qos: 0,
      retain: false,
    };
    const received = encodePacket(
      {
        type: PacketType.PUBLISH,
        dup: false,
        qos: 0,
        retain: false,
        topic: live.topic,
        packetId: 0,
        properties: live.properties,
        payload: live.payload,
      },
      v5 ? 5 : 4,
    );
    const withFrame: Message = { ...live, frame: { bytes: received, v5 } };
    // The very bytes that arrived, no encoding.
    assert.equal(fanout.encode(withFrame, v5, 0, false, 0), received);
    // Another level, a higher QoS or RETAIN: encoded as usual, and the same as without a frame.
    assert.deepEqual(fanout.encode(withFrame, !v5, 0, false, 0), expected(live, !v5, 0, false, 0));
    assert.deepEqual(fanout.encode(withFrame, v5, 0, true, 0), expected(live, v5, 0, true, 0));
  }
});
