import assert from "node:assert/strict";
import { helpText, parseArgs } from "../../src/config/cli.ts";

const NONE = { help: false, version: false, checkConfig: false };

Deno.test("parseArgs() accepts no arguments", () => {
  assert.deepEqual(parseArgs([]), NONE);
});

Deno.test("parseArgs() reads -c/--config in every spelling", () => {
  for (const args of [["-c", "perch.yaml"], ["--config", "perch.yaml"], ["--config=perch.yaml"]]) {
    assert.deepEqual(parseArgs(args), { ...NONE, config: "perch.yaml" }, args.join(" "));
  }
  assert.deepEqual(parseArgs(["--config=a=b.yaml"]), { ...NONE, config: "a=b.yaml" });
});

Deno.test("parseArgs() reads the boolean flags, short and long", () => {
  assert.deepEqual(parseArgs(["-h"]), { ...NONE, help: true });
  assert.deepEqual(parseArgs(["--help"]), { ...NONE, help: true });
  assert.deepEqual(parseArgs(["-v"]), { ...NONE, version: true });
  assert.deepEqual(parseArgs(["--version"]), { ...NONE, version: true });
  assert.deepEqual(parseArgs(["-c", "p.yaml", "--check-config"]), {
    ...NONE,
    config: "p.yaml",
    checkConfig: true,
  });
  assert.deepEqual(parseArgs(["--check-config", "-h", "-v"]), {
    help: true,
    version: true,
    checkConfig: true,
  });
});

Deno.test("parseArgs() names an unknown flag", () => {
  assert.deepEqual(parseArgs(["--port", "1884"]), { error: "Unknown flag: --port" });
  assert.deepEqual(parseArgs(["-hv"]), { error: "Unknown flag: -hv" });
  assert.deepEqual(parseArgs(["-c", "p.yaml", "--verbose"]), { error: "Unknown flag: --verbose" });
});

Deno.test("parseArgs() reports a missing config path", () => {
  assert.deepEqual(parseArgs(["-c"]), { error: "Missing value for flag: -c needs a file path" });
  assert.deepEqual(parseArgs(["--config", "--check-config"]), {
    error: "Missing value for flag: --config needs a file path",
  });
  assert.deepEqual(parseArgs(["--config="]), {
    error: "Missing value for flag: --config needs a file path",
  });
});

Deno.test("parseArgs() rejects a repeated config flag and stray arguments", () => {
  assert.deepEqual(parseArgs(["-c", "a.yaml", "--config=b.yaml"]), {
    error: "Flag given more than once: --config",
  });
  assert.deepEqual(parseArgs(["-c", "a.yaml", "-c", "b.yaml"]), {
    error: "Flag given more than once: -c",
  });
  assert.deepEqual(parseArgs(["perch.yaml"]), {
    error: "Unexpected argument: perch.yaml (give the config file with -c <file>)",
  });
});

Deno.test("helpText() shows usage, every flag, the environment scheme and the docs pointer", () => {
  const text = helpText();
  assert.ok(text.startsWith("Perch: "));
  assert.ok(text.endsWith("\n"));
  for (
    const part of [
      "Usage:",
      "-c, --config <file>",
      "--check-config",
      "-v, --version",
      "-h, --help",
      "PERCH_",
      '"__"',
      "PERCH_LISTENERS__TCP__PORT=1884",
      "PERCH_MQTT__MAXPACKETSIZE=2MiB",
      "PERCH_LOG__LEVEL=debug",
      "docs/configuration.md",
    ]
  ) {
    assert.ok(text.includes(part), `help text lacks ${part}`);
  }
  assert.ok(text.split("\n").every((line) => line.length <= 100), "help text fits 100 columns");
});
