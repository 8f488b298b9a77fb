import assert from "node:assert/strict";
import { isReadmeCurrent } from "../../scripts/readme.ts";

Deno.test("README.md config reference matches the config schema (run `deno task readme`)", async () => {
  const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
  assert.ok(isReadmeCurrent(readme));
});
