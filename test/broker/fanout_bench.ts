/**
 * Fan-out encoding micro-benchmarks: one message to 50 subscribers, encoded once per wire shape
 * (`FanoutEncoder`) against encoding it for each subscriber. `deno bench test/broker/fanout_bench.ts`
 * (or every micro-benchmark: `deno task bench:micro`).
 *
 * @module
 */

import type { Message } from "../../src/backbone/backbone.ts";
import { FanoutEncoder } from "../../src/broker/fanout.ts";
import { encodePacket, PacketType, type QoS, SlabAllocator } from "../../src/codec/mod.ts";

const SUBSCRIBERS = 50;
const TOPIC = "sensors/building-7/floor-3/temperature";

function message(size: number): Message {
  return {
    topic: TOPIC,
    payload: new Uint8Array(size).fill(0x31),
    qos: 1,
    retain: false,
    properties: { userProperties: [["unit", "C"]] },
    expiresAt: 0,
    origin: "publisher",
  };
}

const slab = { allocator: new SlabAllocator() };
const fanout = new FanoutEncoder(slab);

for (const size of [16, 1024]) {
  for (const qos of [0, 1] as QoS[]) {
    const group = `fan-out ${size} B QoS ${qos} to ${SUBSCRIBERS} subscribers`;
    Deno.bench(`${group}: FanoutEncoder (encode once, patch packet ids), slab`, {
      group,
      baseline: true,
    }, () => {
      // A new message per iteration, as every routed message is.
      const m = message(size);
      for (let i = 1; i <= SUBSCRIBERS; i++) fanout.encode(m, false, qos, false, i);
    });
    Deno.bench(`${group}: FanoutEncoder, 3.1.1 and 5 subscribers mixed`, { group }, () => {
      const m = message(size);
      for (let i = 1; i <= SUBSCRIBERS; i++) fanout.encode(m, (i & 1) === 0, qos, false, i);
    });
    Deno.bench(`${group}: encodePacket per subscriber`, { group }, () => {
      const m = message(size);
      for (let i = 1; i <= SUBSCRIBERS; i++) {
        encodePacket({
          type: PacketType.PUBLISH,
          dup: false,
          qos,
          retain: false,
          topic: m.topic,
          packetId: qos === 0 ? 0 : i,
          properties: undefined,
          payload: m.payload,
        }, 4);
      }
    });
  }
}
