import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  brokenCodeSpans,
  CONFIG_DOC,
  configReferenceTable,
  isConfigDocCurrent,
  markdownFiles,
} from "../../scripts/docs.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

Deno.test("docs/configuration.md config reference matches the config schema (run `deno task docs`)", async () => {
  const page = await Deno.readTextFile(join(ROOT, CONFIG_DOC));
  assert.ok(isConfigDocCurrent(page));
});

Deno.test("isConfigDocCurrent() is false once the schema says something the page does not", () => {
  const page = `# Configuration\n\n<!-- config-reference:start -->\n${configReferenceTable()}\n` +
    "<!-- config-reference:end -->\n";
  assert.ok(isConfigDocCurrent(page));
  // A key whose default changed, a key added to the schema (a row missing here), a reworded one.
  assert.ok(!isConfigDocCurrent(page.replace("| `1883` |", "| `1884` |")));
  const lines = page.split("\n");
  const withoutRow = lines.filter((line) => !line.startsWith("| `mqtt.maxQos`")).join("\n");
  assert.ok(!isConfigDocCurrent(withoutRow));
  assert.ok(!isConfigDocCurrent(page.replace("Most retained messages kept.", "Retained.")));
  assert.throws(() => isConfigDocCurrent("# Configuration\n"), /lacks the/);
});

Deno.test("brokenCodeSpans() finds spans that open on one line and close on another", () => {
  const markdown = [
    "One `span` and ``a ` b`` on a line, \\` escaped, then `one that",
    "goes on` here.",
    "",
    "```sh",
    "echo `not a span",
    "```",
    "- a list item with `a/b` and `c",
    "  d`",
  ].join("\n");
  assert.deepEqual(brokenCodeSpans(markdown).map((p) => p.line), [1, 7]);
  assert.deepEqual(brokenCodeSpans("`a` and `b`\n\n``x ` y``\n"), []);
});

Deno.test("README.md and docs/ exist and have no code span broken across lines", async () => {
  const files = await markdownFiles(ROOT);
  for (const page of ["README.md", "docs/configuration.md", "docs/security.md"]) {
    assert.ok(files.includes(join(ROOT, page)), page);
  }
  for (const file of files) {
    const problems = brokenCodeSpans(await Deno.readTextFile(file));
    assert.deepEqual(problems, [], `${file}: ${JSON.stringify(problems)}`);
  }
});
