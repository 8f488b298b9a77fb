/**
 * Perch's own JavaScript heap per idle connection, in process over in-memory connections (see
 * `test/helpers/idle_heap.ts`): the growth after a full GC, and with `--snapshot` the growth per
 * kind of object from two heap snapshots (a plain object named by its first properties, a number,
 * string or internal array by the field holding it).
 *
 * ```sh
 * deno run -A --v8-flags=--expose-gc scripts/idle_heap.ts            # 10,000 connections
 * deno run -A --v8-flags=--expose-gc scripts/idle_heap.ts 20000 --snapshot
 * ```
 *
 * @module
 */

import { measureIdleHeap } from "../test/helpers/idle_heap.ts";

const count = Number(Deno.args.find((arg) => /^\d+$/.test(arg)) ?? 10_000);
const report = await measureIdleHeap(count, { snapshot: Deno.args.includes("--snapshot") });
const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
console.log(
  `${count} idle connections: heap ${report.bytesPerConnection.toFixed(0)} bytes per ` +
    `connection (${mib(report.heapBefore)} -> ${mib(report.heapAfter)} MiB)`,
);
if (report.kinds !== undefined) {
  const total = report.kinds.reduce((sum, kind) => sum + kind.bytesPerConnection, 0);
  console.log(`snapshot growth: ${total.toFixed(0)} bytes per connection`);
  console.log("bytes/conn  objects/conn  kind");
  for (const kind of report.kinds.filter((k) => Math.abs(k.bytesPerConnection) >= 2)) {
    console.log(
      `${kind.bytesPerConnection.toFixed(1).padStart(10)}  ` +
        `${kind.objectsPerConnection.toFixed(2).padStart(12)}  ${kind.kind}`,
    );
  }
}
