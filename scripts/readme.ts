/**
 * Regenerates the generated parts of README.md (the config reference table) from their sources,
 * so the README cannot drift. `deno task readme` writes; `--check` exits 1 when it is stale.
 *
 * @module
 */

import { describeConfig } from "../src/config/mod.ts";

const START = "<!-- config-reference:start -->";
const END = "<!-- config-reference:end -->";

/** The config reference as a Markdown table. */
export function configReferenceTable(): string {
  const cell = (text: string) => text.replaceAll("|", "\\|").replaceAll("\n", " ");
  const rows = describeConfig().map((entry) =>
    `| \`${entry.path}\` | ${cell(entry.type)} | ${
      entry.default === undefined ? "" : `\`${cell(entry.default)}\``
    } | ${cell(entry.description)} |`
  );
  return ["| Key | Type | Default | Description |", "| --- | --- | --- | --- |", ...rows].join(
    "\n",
  );
}

/** README text with the generated section replaced. */
export function renderReadme(readme: string): string {
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  if (start < 0 || end < start) throw new Error(`README.md lacks the ${START} ... ${END} markers`);
  return `${readme.slice(0, start + START.length)}\n${configReferenceTable()}\n${
    readme.slice(end)
  }`;
}

/** Table layout aside (`deno fmt` pads cells), is the README's generated part current? */
export function isReadmeCurrent(readme: string): boolean {
  const normalize = (text: string) =>
    text.split("\n").map((line) =>
      line.startsWith("|") ? line.replace(/\s+/g, " ").replace(/-{3,}/g, "---") : line
    ).filter((line) => line.trim() !== "").join("\n");
  return normalize(renderReadme(readme)) === normalize(readme);
}

if (import.meta.main) {
  const path = new URL("../README.md", import.meta.url);
  const current = await Deno.readTextFile(path);
  if (Deno.args.includes("--check")) {
    if (!isReadmeCurrent(current)) {
      console.error("README.md is stale: run `deno task readme`");
      Deno.exit(1);
    }
  } else if (!isReadmeCurrent(current)) {
    await Deno.writeTextFile(path, renderReadme(current));
    await new Deno.Command(Deno.execPath(), { args: ["fmt", "-q", path.pathname] }).output();
    console.log("README.md updated");
  }
}
