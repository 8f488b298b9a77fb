/**
 * `deno task bench`: compares Perch with Mosquitto and Aedes on fan-in, fan-out, shared subscription,
 * latency and connection scenarios, and writes the results under `bench-results/`. See
 * `scripts/bench/README.md` and `--help`.
 *
 * @module
 */

import { type BenchOptions, parseBenchArgs, USAGE } from "./bench/cli.ts";
import { ProcessGroup } from "./bench/process_group.ts";
import type { BenchResults } from "./bench/report/results.ts";
import { writeChartAndTable, writeResults } from "./bench/report/write_results.ts";
import { renderTables } from "./bench/report/text_table.ts";
import { runBench } from "./bench/run_bench.ts";

/** `--render FILE`: redraws chart.svg and table.txt beside a results.json, running nothing. */
async function render(file: string): Promise<number> {
  const results = JSON.parse(await Deno.readTextFile(file)) as BenchResults;
  const dir = file.includes("/") ? file.slice(0, file.lastIndexOf("/")) : ".";
  await writeChartAndTable(results, dir);
  console.log(`Wrote ${dir}/chart.svg and ${dir}/table.txt from ${file}`);
  return 0;
}

async function main(args: string[]): Promise<number> {
  if (args[0] === "--render") {
    if (args.length !== 2) {
      console.error(`--render takes one results.json and nothing else\n\n${USAGE}`);
      return 2;
    }
    return await render(args[1]);
  }
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
