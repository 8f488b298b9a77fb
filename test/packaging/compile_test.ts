/**
 * `deno task compile` end to end: builds the `perch` executable into a temp dir and runs
 * `perch --version` and `perch --check-config`. `deno compile` type-checks the whole program and
 * writes a ~100 MB binary, and needs Deno's `denort` runtime (downloaded on first use, or given
 * as `DENORT_BIN`): too slow and too networked for every run, so it runs with
 * `deno task test:compile` (which sets `PERCH_COMPILE_TEST=1`) and is ignored otherwise.
 *
 * @module
 */

import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url);

Deno.test({
  name: "deno task compile builds a perch executable that answers --version and --check-config",
  ignore: Deno.env.get("PERCH_COMPILE_TEST") !== "1",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "perch-compile-" });
    try {
      const manifest = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)));
      // The task's own command line, with the output moved to the temp dir.
      const words = String(manifest.tasks.compile).split(/\s+/).slice(1);
      const output = words.indexOf("--output");
      words[output + 1] = `${dir}/perch`;
      const built = await new Deno.Command(Deno.execPath(), {
        args: words,
        cwd: ROOT.pathname,
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(built.code, 0, new TextDecoder().decode(built.stderr));
      const run = (args: string[]) =>
        new Deno.Command(`${dir}/perch`, { args, stdout: "piped", stderr: "piped" }).output();
      const version = await run(["--version"]);
      assert.equal(
        new TextDecoder().decode(version.stdout),
        `perch ${manifest.version}\n`,
      );
      const config = new URL("packaging/perch.yaml", ROOT).pathname;
      const check = await run(["--config", config, "--check-config"]);
      assert.equal(new TextDecoder().decode(check.stdout), "Configuration is valid\n");
      assert.equal(check.code, 0);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
