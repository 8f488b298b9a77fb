import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  brokenCodeSpans,
  brokenLinks,
  CONFIG_DOC,
  configReferenceTable,
  headingAnchors,
  isConfigDocCurrent,
  markdownFiles,
  markdownLinks,
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

Deno.test("markdownLinks() reads inline links and definitions, not code or paragraph text", () => {
  const markdown = [
    'See [a](docs/a.md#x), ![img](bench/chart.svg "title") and `[no](code.md)`.',
    "",
    "[ref]: other.md",
    "text then",
    "[MQTT-4.7.2-1]: not a definition inside a paragraph",
    "```",
    "[no](fenced.md)",
    "```",
  ].join("\n");
  assert.deepEqual(markdownLinks(markdown).map((l) => l.target), [
    "docs/a.md#x",
    "bench/chart.svg",
    "other.md",
  ]);
});

Deno.test("headingAnchors() makes GitHub's anchors", () => {
  const anchors = headingAnchors(
    "# MQTT 5\n## `deno task passwd`\n## Defaults, and why\n## Defaults, and why\n",
  );
  assert.deepEqual([...anchors], [
    "mqtt-5",
    "deno-task-passwd",
    "defaults-and-why",
    "defaults-and-why-1",
  ]);
});

Deno.test("brokenLinks() reports missing files and headings, ignores URLs", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "other.md"), "# Other\n\n## Part two\n");
    const file = join(dir, "page.md");
    const markdown = [
      "[ok](other.md) [ok](other.md#part-two) [ok](#here) [ok](https://example.com/x.md)",
      "[bad](missing.md) [bad](other.md#part-three) [bad](#nowhere)",
      "",
      "# Here",
    ].join("\n");
    const problems = await brokenLinks(file, markdown);
    assert.deepEqual(problems.map((p) => p.message), [
      "link to a missing file: missing.md",
      "link to a missing heading: other.md#part-three",
      "link to a missing heading: #nowhere",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
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

Deno.test("every relative link in README.md and docs/ resolves to a file (and heading)", async () => {
  for (const file of await markdownFiles(ROOT)) {
    const problems = await brokenLinks(file, await Deno.readTextFile(file));
    assert.deepEqual(problems, [], `${file}: ${JSON.stringify(problems)}`);
  }
});
