/**
 * What an idle connection keeps on the heap: a connection that sent CONNECT and nothing since holds
 * no outbound delivery, no inbound flow, no CONNECT handler, no decoder buffers and no timestamps
 * in heap numbers (see `test/helpers/idle_heap.ts`). Before these were created lazily one held
 * ~1,810 bytes; a bound well above today's ~1,070 (the in-memory connection object included)
 * catches state that creeps back onto every connection.
 */

import assert from "node:assert/strict";
import { measureIdleHeap } from "../helpers/idle_heap.ts";

Deno.test("an idle MQTT 3.1.1 connection holds at most 1,300 bytes of heap (3,000 connections, after a full GC)", async () => {
  const report = await measureIdleHeap(3000, { snapshot: true });
  const kinds = report.kinds!;
  const perKind = (name: string) =>
    kinds.find((kind) => kind.kind === `object:${name}`)?.objectsPerConnection ?? 0;
  assert.ok(
    report.bytesPerConnection < 1300,
    `${report.bytesPerConnection.toFixed(0)} bytes per idle connection: ` +
      kinds.slice(0, 12).map((k) => `${k.kind} ${k.bytesPerConnection.toFixed(0)}`).join(", "),
  );
  // Created when first needed, never for an idle connection.
  for (const name of ["Outbound", "InboundFlow", "ConnectFlow", "Deadline"]) {
    assert.ok(perKind(name) < 0.01, `an idle connection holds a ${name}`);
  }
  assert.equal(perKind("ClientConnection"), 1);
  // Timestamps are small integers: one heap number per connection (its epoch-ms start), and a
  // few connections more (under load V8 boxed ~5% of the small-integer fields once, its
  // field-representation tracking; before, every connection held eight).
  const own = kinds.filter((kind) =>
    /^number in object:(ClientConnection|PacketDecoder|Outbound|InboundFlow)\./.test(kind.kind)
  );
  const numbers = own.reduce((sum, kind) => sum + kind.objectsPerConnection, 0);
  assert.ok(
    numbers <= 1.25,
    `${numbers.toFixed(2)} heap numbers per idle connection: ` +
      own.map((kind) => `${kind.kind} ${kind.objectsPerConnection.toFixed(2)}`).join(", "),
  );
});
