/**
 * `deno task bench`: compares Perch with Mosquitto and Aedes on fan-in, fan-out, shared subscription,
 * latency and connection scenarios, and writes the results under `bench-results/`. See
 * `scripts/bench/README.md` and `--help`.
 *
 * @module
 */

import { type BenchOptions, parseBenchArgs, USAGE } from "./bench/cli.ts";
import { ProcessGroup } from "./bench/process_group.ts";
import { writeResults } from "./bench/report/write_results.ts";
import { renderTables } from "./bench/report/text_table.ts";
import { runBench } from "./bench/run_bench.ts";

async function main(args: string[]): Promise<number> {
  let options: BenchOptions | undefined;
  try {
    options = parseBenchArgs(args);
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : error}\n\n${USAGE}`);
    return 2;
  }
  if (options === undefined) {
    console.log(USAGE);
    return 0;
  }
  const processes = new ProcessGroup();
  const onSignal = () => {
    console.error("Interrupted: stopping brokers and generators");
    processes.stopAll().finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    const results = await runBench(options, { processes, args });
    const dir = await writeResults(results, options.outDir);
    console.log(`\n${renderTables(results)}\n`);
    console.log(
      `Results: ${dir}/results.json, chart.svg, table.txt (and ${options.outDir}/latest.json)`,
    );
    return 0;
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    return 1;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    await processes.stopAll();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
