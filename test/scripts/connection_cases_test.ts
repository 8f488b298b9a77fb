/**
 * Unit test of the connection scenario's RSS slope (no broker is started).
 *
 * @module
 */

import assert from "node:assert/strict";
import { fittedSlope } from "../../scripts/bench/scenarios/connection_cases.ts";

Deno.test("fittedSlope: the least-squares slope of RSS over connections", () => {
  // 2 KiB per connection on top of 50 MB, with noise that cancels out.
  const points: [number, number][] = [
    [2500, 50e6 + 2500 * 2048 + 1000],
    [5000, 50e6 + 5000 * 2048 - 1000],
    [7500, 50e6 + 7500 * 2048 - 1000],
    [10000, 50e6 + 10000 * 2048 + 1000],
  ];
  assert.ok(Math.abs(fittedSlope(points) - 2048) < 1);
  assert.ok(Number.isNaN(fittedSlope([[1, 1]])));
  assert.ok(Number.isNaN(fittedSlope([[1, 1], [1, 2]])));
});
