/**
 * `deno task test`: makes sure the tools the tests talk to are installed (installing them with
 * apt-get when running as root, otherwise naming the command; nats-server >= 2.11 comes from Debian
 * forky by way of `scripts/nats_server.ts`; Bun from the npm registry, with the broker's packages
 * installed for it from `bun.lock`), runs `deno test`, and ends with a plain `N passed, M failed`
 * line.
 *
 * Usage: deno task test [deno test arguments, e.g. a path or --filter]
 *
 * @module
 */

import { findNatsServer } from "./nats_server.ts";

/** A command-line tool some tests need, and the Debian package that provides it. */
interface Tool {
  /** Program to look for on PATH, or a shell check that exits 0 when present. */
  check: string[];
  name: string;
  debianPackage: string;
  /** The check must exit 0 (a library, not a program: the interpreter is there either way). */
  mustSucceed?: boolean;
}

const TOOLS: Tool[] = [
  { check: ["mosquitto_sub", "--help"], name: "mosquitto_sub", debianPackage: "mosquitto-clients" },
  { check: ["mosquitto_pub", "--help"], name: "mosquitto_pub", debianPackage: "mosquitto-clients" },
  { check: ["mosquitto", "-h"], name: "mosquitto", debianPackage: "mosquitto" },
  { check: ["openssl", "version"], name: "openssl", debianPackage: "openssl" },
  { check: ["haproxy", "-v"], name: "haproxy", debianPackage: "haproxy" },
  { check: ["kcat", "-V"], name: "kcat", debianPackage: "kcat" },
  // The dashboard tests drive headless Chromium (test/helpers/browser.ts).
  { check: ["chromium", "--version"], name: "chromium", debianPackage: "chromium" },
  {
    // Debian's interpreter first, as test/helpers/paho.ts does: a pyenv python3 lacks the package.
    check: [
      "sh",
      "-c",
      "/usr/bin/python3 -c 'import paho.mqtt.client' || python3 -c 'import paho.mqtt.client'",
    ],
    name: "python3-paho-mqtt",
    debianPackage: "python3-paho-mqtt",
    mustSucceed: true,
  },
];

async function present(check: string[], mustSucceed = false): Promise<boolean> {
  try {
    const { success } = await new Deno.Command(check[0], {
      args: check.slice(1),
      stdout: "null",
      stderr: "null",
    }).output();
    return success || !mustSucceed;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

async function run(cmd: string, args: string[], cwd?: string): Promise<boolean> {
  const status = await new Deno.Command(cmd, {
    args,
    cwd,
    stdout: "inherit",
    stderr: "inherit",
    env: { DEBIAN_FRONTEND: "noninteractive" },
  }).spawn().status;
  return status.success;
}

/** Installs missing Debian packages when root; otherwise explains how. Returns false on failure. */
async function ensureTools(): Promise<boolean> {
  const missing: Tool[] = [];
  for (const tool of TOOLS) if (!(await present(tool.check, tool.mustSucceed))) missing.push(tool);
  if (missing.length === 0) return true;
  const packages = [...new Set(missing.map((t) => t.debianPackage))];
  const command = `apt-get install -y ${packages.join(" ")}`;
  const isRoot = Deno.uid?.() === 0;
  if (isRoot) {
    console.log(`Installing test prerequisites: ${command}`);
    if (await run("apt-get", ["install", "-y", ...packages])) return true;
    if (await run("apt-get", ["update"]) && await run("apt-get", ["install", "-y", ...packages])) {
      return true;
    }
  }
  console.error(
    `Missing test prerequisites: ${missing.map((t) => t.name).join(", ")}. ` +
      `Install them with: ${isRoot ? "" : "sudo "}${command}`,
  );
  return false;
}

/** Finds (as root: unpacks) nats-server >= 2.11; otherwise explains how. Returns false on failure. */
async function ensureNatsServer(): Promise<boolean> {
  try {
    await findNatsServer();
    return true;
  } catch (err) {
    console.error(`Missing test prerequisite: ${err instanceof Error ? err.message : err}`);
    return false;
  }
}

/**
 * Bun, which the tests start the broker on (installed from the npm registry when missing and
 * running as root), and the broker's packages for it (`bun install` from `bun.lock`, which is
 * quick when `node_modules/` is up to date). Returns false on failure.
 */
async function ensureBun(): Promise<boolean> {
  if (!(await present(["bun", "--version"]))) {
    const isRoot = Deno.uid?.() === 0;
    if (!isRoot || !(await run("npm", ["install", "-g", "bun"]))) {
      console.error(
        `Missing test prerequisite: bun. Install it with: ${
          isRoot ? "" : "sudo "
        }npm install -g bun`,
      );
      return false;
    }
  }
  const root = new URL("../", import.meta.url).pathname;
  if (await run("bun", ["install", "--frozen-lockfile", "--silent"], root)) return true;
  console.error("bun install --frozen-lockfile failed: bun.lock and package.json disagree?");
  return false;
}

const SUMMARY = /(\d+) passed(?: \((\d+) steps?\))? \| (\d+) failed/;

async function main(): Promise<number> {
  if (!(await ensureTools()) || !(await ensureNatsServer()) || !(await ensureBun())) {
    console.log("0 passed, 1 failed");
    return 1;
  }
  const args = Deno.args.length > 0 ? Deno.args : ["test/"];
  const child = new Deno.Command(Deno.execPath(), {
    // --expose-gc lets memory-bound tests measure live memory after a full collection.
    args: ["test", "-A", "--parallel", "--v8-flags=--expose-gc", ...args],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let tail = "";
  const decoder = new TextDecoder();
  for await (const chunk of child.stdout) {
    await Deno.stdout.write(chunk);
    tail = (tail + decoder.decode(chunk, { stream: true })).slice(-4096);
  }
  const status = await child.status;
  // Deno's own summary looks like "ok | 12 passed | 0 failed (3s)"; strip colours first.
  // deno-lint-ignore no-control-regex -- ANSI colour escapes start with ESC.
  const plain = tail.replace(/\x1b\[[0-9;]*m/g, "");
  const match = [...plain.matchAll(new RegExp(SUMMARY, "g"))].at(-1);
  const passed = match ? Number(match[1]) : 0;
  const failed = match ? Number(match[3]) : (status.success ? 0 : 1);
  console.log(`${passed} passed, ${failed} failed`);
  return status.code;
}

Deno.exit(await main());
