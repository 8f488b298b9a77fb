/**
 * Writes a run's results: `<out>/<timestamp>/results.json`, `chart.svg` and `table.txt`, plus a copy
 * of the JSON as `<out>/latest.json`.
 *
 * @module
 */

import { renderChart } from "./chart.ts";
import type { BenchResults } from "./results.ts";
import { renderTables } from "./text_table.ts";

/**
 * Writes `chart.svg` and `table.txt` of a run into a folder (also what `deno task bench --render`
 * does beside an existing `results.json`).
 *
 * @param results The results.
 * @param dir The folder.
 */
export async function writeChartAndTable(results: BenchResults, dir: string): Promise<void> {
  await Deno.writeTextFile(`${dir}/chart.svg`, await renderChart(results));
  await Deno.writeTextFile(`${dir}/table.txt`, `${renderTables(results)}\n`);
}

/**
 * Writes the results.
 *
 * @param results The results.
 * @param outDir The parent folder.
 * @returns The folder written to.
 */
export async function writeResults(results: BenchResults, outDir: string): Promise<string> {
  const stamp = results.startedAt.replace(/[:.]/g, "-");
  const dir = `${outDir}/${stamp}`;
  await Deno.mkdir(dir, { recursive: true });
  const json = JSON.stringify(results, null, 2) + "\n";
  await Deno.writeTextFile(`${dir}/results.json`, json);
  await writeChartAndTable(results, dir);
  await Deno.writeTextFile(`${outDir}/latest.json`, json);
  return dir;
}
