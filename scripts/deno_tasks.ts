/**
 * The V8 options of Perch's `deno task` lines, for the scripts that start Perch processes
 * themselves (the benchmark, `deno task cluster`): each runs Perch as its task would.
 *
 * @module
 */

const V8_FLAGS = /--v8-flags=\S+/;

/**
 * The `--v8-flags=...` of a task in `deno.json`, as a list of zero or one flag: `start` for a
 * single node, `frontend` for a cluster front-end.
 */
export async function taskV8Flags(task: "start" | "frontend"): Promise<string[]> {
  const manifest = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  const flag = String(manifest.tasks?.[task] ?? "").match(V8_FLAGS)?.[0];
  return flag === undefined ? [] : [flag];
}
