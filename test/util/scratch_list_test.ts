import assert from "node:assert/strict";
import { ScratchList } from "../../src/util/scratch_list.ts";

Deno.test("ScratchList fills, reads back in order and empties, keeping no reference", () => {
  const list = new ScratchList<{ n: number }>();
  const a = { n: 1 }, b = { n: 2 };
  list.push(a);
  list.push(b);
  assert.equal(list.length, 2);
  assert.equal(list.at(0), a);
  assert.equal(list.at(1), b);
  list.clear();
  assert.equal(list.length, 0);
  assert.deepEqual(list.items, [undefined, undefined]);
  list.push(b);
  assert.equal(list.length, 1);
  assert.equal(list.at(0), b);
});

Deno.test("ScratchList keeps its storage when emptied, unless it grew past its bound", () => {
  const list = new ScratchList<number>();
  list.push(1);
  const storage = list.items;
  list.clear();
  list.push(2);
  assert.equal(list.items, storage);
  for (let i = 0; i < 2000; i++) list.push(i);
  list.clear();
  assert.notEqual(list.items, storage);
  assert.equal(list.items.length, 0);
});
