import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CONFIG_DOC, configReferenceTable, isConfigDocCurrent } from "../../scripts/docs.ts";

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
