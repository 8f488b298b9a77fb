/**
 * The V8 flags the broker sets on itself (`src/ops/runtime_flags.ts`). Set from code, an unknown
 * flag is ignored, so a V8 that renamed one would silently lose the setting: this test notices.
 */
import assert from "node:assert/strict";
import { RUNTIME_V8_FLAGS } from "../../src/ops/runtime_flags.ts";

Deno.test("every runtime V8 flag is one this Deno's V8 knows", async () => {
  for (const flag of RUNTIME_V8_FLAGS) {
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["eval", `--v8-flags=${flag}`, "0"],
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(code, 0, `${flag}: ${new TextDecoder().decode(stderr)}`);
    assert.doesNotMatch(new TextDecoder().decode(stderr), /did not recognize/);
  }
});
