/**
 * Finds a `nats-server` of at least version 2.11 (multi-filter consumers, per-message TTL) for the
 * cluster tests, and installs one when running as root.
 *
 * Debian bookworm ships 2.9, too old; Debian forky ships a current one, but its package does not
 * install on bookworm (its post-install script needs systemd-sysusers), so only the binary is
 * taken from it, never installed:
 *
 * 1. forky is added to apt's sources (`/etc/apt/sources.list.d/forky.sources`) with a pin of
 *    priority 1 (`/etc/apt/preferences.d/forky`), so nothing else is ever upgraded from it;
 * 2. forky's package lists are fetched (`apt-get update` of that source alone);
 * 3. `apt-get download nats-server/forky` fetches the package and `dpkg-deb -x` unpacks it into
 *    `.cache/nats-server/` of this repository (git-ignored); the binary is
 *    `.cache/nats-server/usr/sbin/nats-server`.
 *
 * Usage: `deno run -A scripts/nats_server.ts` prints the binary's absolute path (installing it if
 * needed, as root), or exits 1 naming the command to run.
 *
 * @module
 */

import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The oldest usable version: consumers with several filter subjects and per-message TTL. */
export const MIN_NATS_SERVER_VERSION: readonly [number, number] = [2, 11];

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const CACHE_DIR = join(ROOT, ".cache", "nats-server");
const CACHED_BINARY = join(CACHE_DIR, "usr", "sbin", "nats-server");

const FORKY_SOURCES = "/etc/apt/sources.list.d/forky.sources";
const FORKY_PIN = "/etc/apt/preferences.d/forky";
const HEADER = "# Written by perch scripts/nats_server.ts: nats-server >= 2.11 comes from forky.\n";
const FORKY_SOURCES_TEXT = `${HEADER}Types: deb
URIs: http://deb.debian.org/debian
Suites: forky
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
`;
const FORKY_PIN_TEXT =
  `${HEADER}# Priority 1: nothing is upgraded from forky; only asked-for packages come from it.
Package: *
Pin: release n=forky
Pin-Priority: 1
`;

/** The command that installs the binary, for error messages. */
const INSTALL_COMMAND = "sudo deno run -A scripts/nats_server.ts";

/**
 * The absolute path of a `nats-server` binary of version >= 2.11: the one on PATH if new enough,
 * else the one unpacked in `.cache/nats-server/`, else (as root) a freshly unpacked one.
 *
 * @throws Error naming the command to run when none is found and this process is not root.
 */
export async function findNatsServer(): Promise<string> {
  const onPath = await whichOnPath("nats-server");
  const pathVersion = onPath === undefined ? undefined : await versionOf(onPath);
  if (onPath !== undefined && pathVersion !== undefined && isNewEnough(pathVersion)) return onPath;
  const cachedVersion = await versionOf(CACHED_BINARY);
  if (cachedVersion !== undefined && isNewEnough(cachedVersion)) return CACHED_BINARY;
  const found = onPath === undefined
    ? "no nats-server on PATH"
    : `${onPath} is version ${pathVersion?.join(".") ?? "unknown"}`;
  if (Deno.uid() !== 0) {
    throw new Error(
      `nats-server >= ${MIN_NATS_SERVER_VERSION.join(".")} is needed (${found}, none in ` +
        `${CACHE_DIR}). Unpack Debian forky's with: ${INSTALL_COMMAND}`,
    );
  }
  await installFromForky();
  const installed = await versionOf(CACHED_BINARY);
  if (installed === undefined || !isNewEnough(installed)) {
    throw new Error(
      `forky's nats-server in ${CACHED_BINARY} is version ${installed?.join(".") ?? "unknown"}, ` +
        `not >= ${MIN_NATS_SERVER_VERSION.join(".")}`,
    );
  }
  return CACHED_BINARY;
}

function isNewEnough(version: readonly number[]): boolean {
  const [major, minor] = MIN_NATS_SERVER_VERSION;
  return version[0] > major || (version[0] === major && version[1] >= minor);
}

/** The version `program --version` reports (`nats-server: v2.11.4`), or undefined if absent. */
async function versionOf(program: string): Promise<number[] | undefined> {
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(program, { args: ["--version"], stdin: "null" }).output();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.PermissionDenied) {
      return undefined;
    }
    throw err;
  }
  const text = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
  const match = /v?(\d+)\.(\d+)\.(\d+)/.exec(text);
  return output.success && match ? match.slice(1, 4).map(Number) : undefined;
}

/** The absolute path of an executable file named `name` in a PATH directory. */
async function whichOnPath(name: string): Promise<string | undefined> {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (dir === "") continue;
    const path = resolve(dir, name);
    try {
      const info = await Deno.stat(path);
      if (info.isFile && ((info.mode ?? 0) & 0o111) !== 0) return path;
    } catch (err) {
      const unusable = err instanceof Deno.errors.NotFound ||
        err instanceof Deno.errors.NotADirectory || err instanceof Deno.errors.PermissionDenied;
      if (!unusable) throw err;
    }
  }
  return undefined;
}

async function run(cmd: string, args: string[], cwd?: string): Promise<void> {
  const status = await new Deno.Command(cmd, {
    args,
    cwd,
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
    env: { DEBIAN_FRONTEND: "noninteractive" },
  }).spawn().status;
  if (!status.success) throw new Error(`${cmd} ${args.join(" ")} failed (exit ${status.code})`);
}

/** Writes `text` to `path` unless it already holds exactly that. */
async function ensureFile(path: string, text: string): Promise<void> {
  try {
    if (await Deno.readTextFile(path) === text) return;
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  console.error(`Writing ${path}`);
  await Deno.writeTextFile(path, text);
}

/** Steps 1-3 of the module comment; the unpacked tree replaces `.cache/nats-server/` whole. */
async function installFromForky(): Promise<void> {
  await ensureFile(FORKY_SOURCES, FORKY_SOURCES_TEXT);
  await ensureFile(FORKY_PIN, FORKY_PIN_TEXT);
  // Only forky's lists: the other sources are left as they are (and cannot fail this step).
  await run("apt-get", [
    "update",
    "-o",
    `Dir::Etc::SourceList=${FORKY_SOURCES}`,
    "-o",
    "Dir::Etc::SourceParts=-",
    "-o",
    "APT::Get::List-Cleanup=0",
  ]);
  await Deno.mkdir(dirname(CACHE_DIR), { recursive: true });
  const work = await Deno.makeTempDir({ dir: dirname(CACHE_DIR), prefix: "nats-server-" });
  try {
    // The download lands in `work`, which apt's unprivileged _apt user cannot write to.
    await run("apt-get", ["download", "-o", "APT::Sandbox::User=root", "nats-server/forky"], work);
    const deb = [...Deno.readDirSync(work)].find((e) => e.name.endsWith(".deb"));
    if (deb === undefined) throw new Error(`apt-get download left no .deb in ${work}`);
    const tree = join(work, "tree");
    await run("dpkg-deb", ["-x", join(work, deb.name), tree]);
    await Deno.remove(CACHE_DIR, { recursive: true }).catch((err) => {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    });
    await Deno.rename(tree, CACHE_DIR);
    console.error(`Unpacked ${deb.name} into ${CACHE_DIR}`);
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}

if (import.meta.main) {
  try {
    console.log(await findNatsServer());
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    Deno.exit(1);
  }
}
