/**
 * Writes a run's results: `<out>/<timestamp>/results.json`, `chart.svg` and `table.txt`, plus a copy
 * of the JSON as `<out>/latest.json`.
 *
 * @module
 */

import type { BenchResults } from "./results.ts";
import { renderSvgChart } from "./svg_chart.ts";
import { renderTables } from "./text_table.ts";

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
  await Deno.writeTextFile(`${dir}/chart.svg`, renderSvgChart(results));
  await Deno.writeTextFile(
    `${dir}/table.txt`,
    `${renderTables(results)}\n`,
  );
  await Deno.writeTextFile(`${outDir}/latest.json`, json);
  return dir;
}
