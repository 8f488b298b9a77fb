/**
 * Regenerates the generated parts of the documentation (the config reference in
 * docs/configuration.md) from their sources, so the docs cannot drift. `deno task docs` writes;
 * `--check` (part of `deno task check`) exits 1 when it is stale.
 *
 * @module
 */

import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describeConfig } from "../src/config/mod.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** The page whose marked section holds the generated config reference. */
export const CONFIG_DOC = "docs/configuration.md";

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

/**
 * The configuration page with its generated section replaced.
 *
 * @throws {Error} When the page lacks the start and end markers.
 */
export function renderConfigDoc(page: string): string {
  const start = page.indexOf(START);
  const end = page.indexOf(END);
  if (start < 0 || end < start) {
    throw new Error(`${CONFIG_DOC} lacks the ${START} ... ${END} markers`);
  }
  return `${page.slice(0, start + START.length)}\n${configReferenceTable()}\n${page.slice(end)}`;
}

/** Table layout aside (`deno fmt` pads cells), is the page's generated part current? */
export function isConfigDocCurrent(page: string): boolean {
  const normalize = (text: string) =>
    text.split("\n").map((line) =>
      line.startsWith("|") ? line.replace(/\s+/g, " ").replace(/-{3,}/g, "---") : line
    ).filter((line) => line.trim() !== "").join("\n");
  return normalize(renderConfigDoc(page)) === normalize(page);
}

if (import.meta.main) {
  const path = join(ROOT, CONFIG_DOC);
  const current = await Deno.readTextFile(path);
  if (Deno.args.includes("--check")) {
    if (!isConfigDocCurrent(current)) {
      console.error(`${CONFIG_DOC}: the config reference is stale: run \`deno task docs\``);
      Deno.exit(1);
    }
  } else if (!isConfigDocCurrent(current)) {
    await Deno.writeTextFile(path, renderConfigDoc(current));
    await new Deno.Command(Deno.execPath(), { args: ["fmt", "-q", path] }).output();
    console.log(`${CONFIG_DOC} updated`);
  }
}
