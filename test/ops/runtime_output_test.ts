/**
 * What the runtime or an npm module would print by itself goes through the logger: Node-style
 * process warnings (the runtime's own deprecations included), console calls, and an uncaught
 * error's report, so a `json` log stays one JSON object per line.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import process from "node:process";
import { routeRuntimeOutput } from "../../src/ops/runtime_output.ts";
import { createLogger } from "../../src/util/logger.ts";

Deno.test("routeRuntimeOutput logs process warnings and console output as log entries", () => {
  const lines: string[] = [];
  const logger = createLogger({
    level: "debug",
    format: "json",
    write: (line) => lines.push(line),
  });
  const restore = routeRuntimeOutput(logger);
  try {
    process.emitWarning("old API", "DeprecationWarning", "DEP0999");
    // The runtime's own deprecation warning for the Buffer() constructor takes the same path.
    // deno-lint-ignore no-explicit-any
    new (Buffer as any)(4);
    console.warn("disk at %d%%", 91);
    console.log("plain", { a: 1 });
  } finally {
    restore();
  }
  const entries = lines.map((line) => JSON.parse(line));
  assert.deepEqual(entries.map(({ time: _, ...rest }) => rest), [
    {
      level: "warn",
      msg: "runtime warning",
      type: "DeprecationWarning",
      code: "DEP0999",
      warning: "old API",
    },
    {
      level: "warn",
      msg: "runtime warning",
      type: "DeprecationWarning",
      code: "DEP0005",
      warning: entries[1].warning,
    },
    { level: "warn", msg: "console output", text: "disk at 91%" },
    { level: "info", msg: "console output", text: "plain { a: 1 }" },
  ]);
  assert.match(entries[1].warning, /^Buffer\(\) is deprecated/);
});

Deno.test("routeRuntimeOutput reports an uncaught error as one JSON line and exits with 1", async () => {
  const module = new URL("../../src/ops/runtime_output.ts", import.meta.url).href;
  const logger = new URL("../../src/util/logger.ts", import.meta.url).href;
  const script = `
    import { routeRuntimeOutput } from "${module}";
    import { createLogger } from "${logger}";
    routeRuntimeOutput(createLogger({ format: "json" }));
    setTimeout(() => { throw new Error("boom"); }, 0);
  `;
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(code, 1);
  assert.equal(new TextDecoder().decode(stdout), "");
  const lines = new TextDecoder().decode(stderr).trim().split("\n");
  assert.equal(lines.length, 1, lines.join("\n"));
  const entry = JSON.parse(lines[0]);
  assert.deepEqual([entry.level, entry.msg, entry.error], ["error", "uncaught error", "boom"]);
});
