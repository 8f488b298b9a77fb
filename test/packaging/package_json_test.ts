/**
 * One source of truth for dependency versions: `deno.json` maps each bare specifier to an npm
 * package and version range for Deno; `package.json` lists the same packages at the same ranges
 * for Bun, and the two lock files pin the same versions. A dependency added to one side only, or
 * locked differently, fails here with what to change.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";

const ROOT = new URL("../../", import.meta.url).pathname;

async function json(file: string): Promise<Record<string, unknown>> {
  return JSON.parse(await Deno.readTextFile(join(ROOT, file)));
}

/** `npm:hono@^4.1.0` -> `["hono", "^4.1.0"]`; `npm:/hono@^4.1.0/` (a `hono/` prefix) too. */
function npmSpecifier(target: string): [string, string] {
  const match = /^npm:\/?((?:@[^/@]+\/)?[^/@]+)@([^/]+)\/?$/.exec(target);
  if (!match) throw new Error(`Not an npm specifier: ${target}`);
  return [match[1], match[2]];
}

/** `@hono/zod-openapi/x` -> `@hono/zod-openapi`; `hono/jwt` -> `hono`. */
function packageOf(specifier: string): string {
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
}

/** The npm packages the broker's own code imports (what runs on Bun), comments left out. */
async function brokerPackages(): Promise<Set<string>> {
  const found = new Set<string>();
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(dir)) {
      const path = join(dir, entry.name);
      if (entry.isDirectory) await walk(path);
      else if (entry.name.endsWith(".ts")) {
        const code = (await Deno.readTextFile(path))
          .replace(/\/\*[\s\S]*?\*\//g, "")
          .replace(/\/\/.*$/gm, "");
        for (const [, specifier] of code.matchAll(/\bfrom\s+["']([^"']+)["']/g)) {
          if (/^(\.|node:|npm:|jsr:|https?:)/.test(specifier)) continue;
          found.add(packageOf(specifier));
        }
      }
    }
  };
  for (const dir of ["src", "routes", "cluster"]) await walk(join(ROOT, dir));
  return found;
}

Deno.test("package.json lists the packages the broker imports at deno.json's version ranges", async () => {
  const imports = (await json("deno.json")).imports as Record<string, string>;
  const ranges = new Map(Object.values(imports).map(npmSpecifier));
  const dependencies = (await json("package.json")).dependencies as Record<string, string>;
  const needed = [...await brokerPackages()].sort();
  assert.deepEqual(
    Object.keys(dependencies).sort(),
    needed,
    "package.json's dependencies must be the npm packages src/, routes/ and cluster/ import",
  );
  for (const name of needed) {
    assert.ok(ranges.has(name), `${name} is imported but deno.json maps no npm: specifier to it`);
    assert.equal(
      dependencies[name],
      ranges.get(name),
      `${name}: package.json says ${dependencies[name]}, deno.json ${ranges.get(name)}`,
    );
  }
});

Deno.test("bun.lock pins every dependency at the version deno.lock pins", async () => {
  const denoLock = (await json("deno.lock")).specifiers as Record<string, string>;
  // bun.lock is JSON with trailing commas.
  const text = await Deno.readTextFile(join(ROOT, "bun.lock"));
  const bunLock = JSON.parse(text.replace(/,(\s*[}\]])/g, "$1")) as {
    packages: Record<string, [string, ...unknown[]]>;
  };
  const dependencies = (await json("package.json")).dependencies as Record<string, string>;
  for (const [name, range] of Object.entries(dependencies)) {
    // deno.lock: "npm:hono@^4.1.0": "4.1.2" (peer dependencies follow an underscore); it writes
    // a caret range below 1.0 as the tilde range it equals (^0.8.1 is ~0.8.1).
    const key = `npm:${name}@${range.replace(/^\^0\./, "~0.")}`;
    const denoVersion = (denoLock[`npm:${name}@${range}`] ?? denoLock[key])?.split("_")[0];
    const bunVersion = bunLock.packages[name]?.[0].slice(name.length + 1);
    assert.ok(denoVersion, `deno.lock has no npm:${name}@${range}: run deno install`);
    assert.equal(
      bunVersion,
      denoVersion,
      `${name}: bun.lock has ${bunVersion}, deno.lock ${denoVersion} (bun add ${name}@${denoVersion}, then restore the range in package.json and run bun install)`,
    );
  }
});
