import assert from "node:assert/strict";
import { InflightTable } from "../../src/session/inflight_table.ts";

interface Entry {
  packetId: number;
  tag: string;
}

const entry = (packetId: number, tag = String(packetId)): Entry => ({ packetId, tag });

Deno.test("InflightTable gets, replaces and deletes entries by packet id", () => {
  const table = new InflightTable<Entry>();
  assert.equal(table.size, 0);
  table.set(entry(1));
  table.set(entry(2));
  assert.equal(table.size, 2);
  assert.equal(table.get(1)?.tag, "1");
  assert.equal(table.has(2), true);
  assert.equal(table.get(3), undefined);
  assert.equal(table.get(9), undefined, "same slot as 1, another id");
  table.set(entry(1, "replaced"));
  assert.equal(table.size, 2);
  assert.equal(table.get(1)?.tag, "replaced");
  assert.equal(table.delete(1), true);
  assert.equal(table.delete(1), false);
  assert.equal(table.delete(9), false);
  assert.equal(table.size, 1);
  assert.equal(table.get(1), undefined);
});

Deno.test("InflightTable.values() lists entries in the order they were added, across growth", () => {
  const table = new InflightTable<Entry>();
  const ids = [5, 3, 65535, 1, 40, 17, 200, 8, 100, 2];
  for (const id of ids) table.set(entry(id));
  table.delete(40);
  table.set(entry(4000));
  const expected = [...ids.filter((id) => id !== 40), 4000];
  assert.deepEqual(table.values().map((e) => e.packetId), expected);
});

Deno.test("InflightTable keeps ids that share a slot apart (ids not from freeId)", () => {
  const table = new InflightTable<Entry>();
  // 1, 9, 17 and 65 share a slot of an 8-slot table.
  for (const id of [1, 9, 17, 65]) table.set(entry(id));
  for (const id of [1, 9, 17, 65]) assert.equal(table.get(id)?.packetId, id);
  assert.equal(table.size, 4);
});

Deno.test("InflightTable.freeId() skips ids in use and wraps from 65535 to 1 [MQTT-2.2.1-4]", () => {
  const table = new InflightTable<Entry>();
  table.set(entry(65534));
  table.set(entry(65535));
  table.set(entry(1));
  const id = table.freeId(65534);
  assert.ok(id !== 65534 && id !== 65535 && id !== 1 && id >= 1 && id <= 65535, `got ${id}`);
  assert.equal(table.has(id), false);
  // Slot 7 of the 8-slot table holds 65535: the next id with a free slot is 8.
  assert.equal(table.freeId(7), 8);
  assert.equal(table.freeId(2), 2);
});

Deno.test("InflightTable holds 65,535 entries allocated by freeId(), each found by its id", () => {
  const table = new InflightTable<Entry>();
  let next = 1;
  for (let i = 0; i < 65535; i++) {
    const id = table.freeId(next);
    table.set(entry(id));
    next = id === 0xffff ? 1 : id + 1;
  }
  assert.equal(table.size, 65535);
  for (let id = 1; id <= 65535; id++) assert.equal(table.get(id)?.packetId, id);
  const values = table.values();
  assert.equal(values.length, 65535);
  assert.deepEqual(values.slice(0, 3).map((e) => e.packetId), [1, 2, 3]);
});
