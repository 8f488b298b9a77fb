/**
 * `deno task fuzz`: long fuzz runs of the codec and the broker (see `test/helpers/fuzz.ts`).
 *
 * Usage: deno task fuzz [--iterations N] [--seed S] [--json]
 *   --iterations  inputs to try (default 1000000)
 *   --seed        PRNG seed (default: random; printed, so a fault can be replayed)
 *   --json        print only the report, as one JSON line (for the test that runs this script)
 * Exits 1 when any input broke a rule, printing the iteration, stage and input of each.
 *
 * @module
 */

import { runFuzz } from "../test/helpers/fuzz.ts";

function option(name: string, fallback: number): number {
  const index = Deno.args.indexOf(`--${name}`);
  if (index < 0) return fallback;
  const value = Number(Deno.args[index + 1]);
  if (!Number.isSafeInteger(value) || value < 0) {
    console.error(`--${name}: expected a non-negative integer, got "${Deno.args[index + 1]}"`);
    Deno.exit(2);
  }
  return value;
}

const iterations = option("iterations", 1_000_000);
const seed = option("seed", crypto.getRandomValues(new Uint32Array(1))[0]);
const json = Deno.args.includes("--json");
if (!json) console.log(`fuzz: seed ${seed}, ${iterations} iterations`);
const report = await runFuzz({
  seed,
  iterations,
  progressEvery: 50_000,
  onProgress: (done, faults) => {
    if (done > 0 && !json) console.log(`  ${done} iterations, ${faults} faults`);
  },
});
if (json) {
  console.log(JSON.stringify(report));
  Deno.exit(report.faults.length === 0 ? 0 : 1);
}
const { faults, ...summary } = report;
console.log(JSON.stringify(summary, null, 2));
for (const fault of faults) {
  console.log(`FAULT at iteration ${fault.iteration} (${fault.stage}): ${fault.what}`);
  console.log(`  input: ${fault.input}`);
}
console.log(
  faults.length === 0
    ? `${report.iterations} iterations, no fault`
    : `${faults.length} faults in ${report.iterations} iterations`,
);
Deno.exit(faults.length === 0 ? 0 : 1);
