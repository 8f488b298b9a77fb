/**
 * The packaging in the repository, checked where it cannot be run here: the Dockerfile's structure
 * (docker is not available), the systemd unit with `systemd-analyze verify` (or a parse when that
 * is missing), the shipped config, and the permissions `deno task compile` bakes into the binary
 * (they must let it do what `deno task start` does).
 *
 * @module
 */

import assert from "node:assert/strict";
import { loadConfig } from "../../src/config/mod.ts";

const ROOT = new URL("../../", import.meta.url);
const read = (path: string) => Deno.readTextFile(new URL(path, ROOT));

/** One Dockerfile instruction: keyword and arguments, continuation lines joined. */
interface Instruction {
  keyword: string;
  args: string;
}

/** Parses a Dockerfile into stages of instructions (comments dropped, `\` continuations joined). */
function parseDockerfile(text: string): Instruction[][] {
  const logical: string[] = [];
  let pending = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line.startsWith("#") || (line === "" && pending === "")) continue;
    if (line.endsWith("\\")) {
      pending += line.slice(0, -1) + " ";
      continue;
    }
    logical.push((pending + line).trim());
    pending = "";
  }
  assert.equal(pending, "", "the Dockerfile ends inside a continued line");
  const stages: Instruction[][] = [];
  for (const line of logical.filter((l) => l !== "")) {
    const [, keyword, args] = /^(\S+)\s+(.*)$/.exec(line) ?? [];
    assert.ok(keyword, `not an instruction: ${line}`);
    const instruction = { keyword: keyword.toUpperCase(), args: args.trim() };
    if (instruction.keyword === "FROM") stages.push([]);
    assert.ok(stages.length > 0, `${keyword} before FROM`);
    stages.at(-1)!.push(instruction);
  }
  return stages;
}

Deno.test("Dockerfile builds the binary with deno task compile and runs it on Debian as a non-root user with a /healthz check", async () => {
  const stages = parseDockerfile(await read("Dockerfile"));
  const known = new Set([
    "FROM",
    "RUN",
    "COPY",
    "WORKDIR",
    "USER",
    "EXPOSE",
    "HEALTHCHECK",
    "ENTRYPOINT",
    "CMD",
    "ENV",
    "ARG",
    "LABEL",
  ]);
  for (const instruction of stages.flat()) {
    assert.ok(known.has(instruction.keyword), instruction.keyword);
  }
  assert.equal(stages.length, 2);
  const [build, final] = stages;
  const all = (stage: Instruction[], keyword: string) =>
    stage.filter((i) => i.keyword === keyword).map((i) => i.args);
  const one = (stage: Instruction[], keyword: string) => {
    const found = all(stage, keyword);
    assert.equal(found.length, 1, `one ${keyword}`);
    return found[0];
  };

  assert.match(one(build, "FROM"), /^denoland\/deno:debian-\d+\.\d+\.\d+ AS build$/);
  assert.ok(all(build, "RUN").includes("deno task compile"));
  // Everything the compile reads is copied in, and exists.
  const copied = all(build, "COPY").flatMap((args) => args.split(/\s+/).slice(0, -1));
  for (const path of ["deno.json", "deno.lock", "src/", "routes/"]) {
    assert.ok(copied.includes(path), `COPY ${path}`);
    await Deno.stat(new URL(path, ROOT));
  }

  assert.match(one(final, "FROM"), /^debian:[a-z]+-slim$/);
  const user = one(final, "USER");
  assert.ok(!["root", "0"].includes(user), `USER ${user}`);
  assert.ok(all(final, "RUN").some((run) => new RegExp(`useradd .*\\b${user}$`).test(run)));
  assert.ok(
    all(final, "COPY").includes("--from=build /src/dist/perch /usr/local/bin/perch"),
    "COPY of the compiled binary",
  );
  assert.ok(all(final, "COPY").includes("packaging/perch.yaml /etc/perch/perch.yaml"));
  const healthcheck = one(final, "HEALTHCHECK");
  assert.match(healthcheck, /CMD \[.*"http:\/\/127\.0\.0\.1:8888\/healthz"\]$/);
  assert.ok(all(final, "RUN").some((run) => /apt-get install .*\bcurl\b/.test(run)));
  assert.equal(one(final, "ENTRYPOINT"), '["/usr/local/bin/perch"]');
  assert.deepEqual(JSON.parse(one(final, "CMD")), ["--config", "/etc/perch/perch.yaml"]);
  const exposed = one(final, "EXPOSE").split(/\s+/);
  for (const port of ["1883", "8888"]) assert.ok(exposed.includes(port), `EXPOSE ${port}`);

  // .dockerignore lets through what the COPY instructions need.
  const ignore = (await read(".dockerignore")).split("\n");
  for (const path of ["deno.json", "deno.lock", "src/", "routes/", "packaging/perch.yaml"]) {
    assert.ok(ignore.includes(`!${path}`), `.dockerignore lets ${path} through`);
  }
});

Deno.test("the shipped perch.yaml is a valid configuration that logs JSON", async () => {
  const config = await loadConfig({ file: new URL("packaging/perch.yaml", ROOT).pathname });
  assert.equal(config.log.format, "json");
  assert.equal(config.admin.port, 8888);
});

/** The unit's `[Section]` -> key -> values. */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const section = /^\[(\w+)\]$/.exec(line);
    if (section) {
      current = new Map();
      sections.set(section[1], current);
      continue;
    }
    const entry = /^([A-Za-z]+)=(.*)$/.exec(line);
    assert.ok(entry && current, `not a unit file line: ${line}`);
    current.set(entry[1], [...current.get(entry[1]) ?? [], entry[2]]);
  }
  return sections;
}

async function hasSystemdAnalyze(): Promise<boolean> {
  try {
    return (await new Deno.Command("systemd-analyze", { args: ["--version"], stdout: "null" })
      .output()).success;
  } catch {
    return false;
  }
}

Deno.test("packaging/perch.service runs the binary as perch with SIGHUP reload, and passes systemd-analyze verify", async () => {
  const text = await read("packaging/perch.service");
  const unit = parseUnit(text);
  const service = unit.get("Service")!;
  assert.deepEqual(service.get("ExecStart"), [
    "/usr/local/bin/perch --config /etc/perch/perch.yaml",
  ]);
  assert.deepEqual(service.get("ExecReload"), ["/bin/kill -HUP $MAINPID"]);
  assert.deepEqual(service.get("User"), ["perch"]);
  assert.deepEqual(service.get("KillSignal"), ["SIGTERM"]);
  assert.deepEqual(service.get("StateDirectory"), ["perch"]);
  assert.deepEqual(unit.get("Install")!.get("WantedBy"), ["multi-user.target"]);
  assert.equal(service.get("MemoryDenyWriteExecute"), undefined, "V8 needs W^X off");

  if (!(await hasSystemdAnalyze())) return; // The parse above is the check then.
  // verify wants the executables to exist: point them at ones this machine has.
  const dir = await Deno.makeTempDir();
  try {
    const kill = (await new Deno.Command("sh", { args: ["-c", "command -v kill"], stdout: "piped" })
      .output()).stdout;
    const local = text.replaceAll("/usr/local/bin/perch", Deno.execPath())
      .replaceAll("/bin/kill", new TextDecoder().decode(kill).trim() || "/bin/kill");
    await Deno.writeTextFile(`${dir}/perch.service`, local);
    const { code, stdout, stderr } = await new Deno.Command("systemd-analyze", {
      args: ["verify", `${dir}/perch.service`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const output = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
    assert.equal(output.trim(), "", output);
    assert.equal(code, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** The permission and V8 flags of a `deno run`/`deno compile` task. */
async function taskFlags(task: string): Promise<string[]> {
  const manifest = JSON.parse(await read("deno.json"));
  return String(manifest.tasks[task]).split(/\s+/).filter((w) =>
    /^--(allow-[a-z]+|v8-flags=)/.test(w)
  ).sort();
}

Deno.test("deno task frontend is deno task start with a larger young generation", async () => {
  const manifest = JSON.parse(await read("deno.json"));
  assert.equal(
    manifest.tasks.frontend,
    manifest.tasks.start.replace("--max-semi-space-size=4", "--max-semi-space-size=32"),
  );
  assert.notEqual(manifest.tasks.frontend, manifest.tasks.start);
});

Deno.test("deno task compile gives the binary deno task start's permissions, enough for --version and --check-config", async () => {
  const flags = await taskFlags("compile");
  assert.deepEqual(flags, await taskFlags("start"));
  const run = (args: string[]) =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", ...flags, new URL("src/main.ts", ROOT).pathname, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
  const version = await run(["--version"]);
  assert.match(new TextDecoder().decode(version.stdout), /^perch \d+\.\d+\.\d+\n$/);
  const check = await run([
    "--config",
    new URL("packaging/perch.yaml", ROOT).pathname,
    "--check-config",
  ]);
  assert.equal(new TextDecoder().decode(check.stdout), "Configuration is valid\n");
  assert.equal(check.code, 0);
});
