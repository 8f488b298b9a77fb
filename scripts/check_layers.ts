/**
 * Keeps the layering of DESIGN section 2 true: which folders of `src/` may import which, that
 * `routes/` and `cluster/` use only `src/mod.ts`, that the runtimes' own APIs (`Deno.*`, `Bun.*`)
 * stay in `src/transport/` so the broker runs on Deno and on Bun (everything else uses `node:`
 * built-ins both implement), and that there are no import cycles. Exits 1 listing every violation.
 *
 * Deliberate departures from the DESIGN picture, kept visible here:
 * - `topic` imports `codec/errors.ts` and `codec/reason_codes.ts`: its validators return the
 *   reason-coded `MqttError` the broker answers with.
 * - `broker` may import only the seam of `backbone` (`backbone.ts`, `errors.ts`), never an
 *   implementation: `main.ts` chooses the backbone.
 * - `transport` imports `util/address_match.ts` (trusted proxy and PROXY protocol source lists);
 *   `util` is the bottom layer and knows nothing about MQTT.
 * - `broker` imports `auth/enhanced.ts` for the enhanced-authentication interface it drives.
 * - `events` imports `ops/client_events.ts` for the disconnect reason names the logs use too.
 *
 * @module
 */

import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** Folder of src/ -> folders of src/ it may import (itself is always allowed). */
const ALLOWED: Record<string, string[]> = {
  codec: [],
  util: [],
  domain: ["codec"],
  topic: ["codec"],
  config: ["util"],
  session: ["codec", "topic", "util", "domain"],
  backbone: ["codec", "topic", "util", "domain"],
  transport: ["util"],
  hooks: ["codec", "transport"],
  // The users and ACL rules live in the backbone's config store: auth sees the seam alone.
  auth: ["codec", "topic", "util", "hooks", "domain", "backbone"],
  broker: ["codec", "topic", "util", "domain", "session", "backbone", "hooks", "transport", "auth"],
  // The Kafka bridge: a message sink on the seams (domain/sink.ts, the backbone's outbox and config
  // store); main.ts wires it, and the broker never imports it.
  bridge: ["codec", "domain", "util", "backbone", "topic"],
  // Operations: start-up checks of the configured files, client lifecycle logs and counters.
  ops: ["codec", "util", "config", "hooks", "transport", "auth"],
  // Event notifications and agent mode: fed the engine's lifecycle events by main.ts, they reach
  // the backbone (agent records) only through its seam.
  events: ["codec", "util", "config", "domain", "backbone", "ops"],
};

/**
 * The only files of src/backbone/ the engine may import: the seam and its errors, never an
 * implementation (the composition root picks one).
 */
const BACKBONE_SEAM = new Set(["src/backbone/backbone.ts", "src/backbone/errors.ts"]);

/** Engine internals scripts/ must reach through src/mod.ts. */
const ENGINE_INTERNALS = ["src/broker/", "src/session/", "src/backbone/", "src/domain/"];

/**
 * A runtime's own API. Outside `src/transport/` only `globalThis.Deno?.` may appear, for what
 * only Deno has (its permissions), skipped on other runtimes.
 */
const RUNTIME_API = /\b(Deno|Bun)\./;

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+["']([^"']+)["']/g;
const SIDE_EFFECT_IMPORT = /(?:^|\n)\s*import\s+["']([^"']+)["']/g;

async function* walk(dir: string): AsyncGenerator<string> {
  let entries: Deno.DirEntry[];
  try {
    entries = [];
    for await (const entry of Deno.readDir(dir)) entries.push(entry);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return;
    throw err;
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) yield* walk(path);
    else if (entry.name.endsWith(".ts")) yield path;
  }
}

/** The source without its comments (documentation may name runtime APIs). */
function codeOf(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
}

function localImports(file: string, source: string): string[] {
  const found: string[] = [];
  for (const pattern of [IMPORT, SIDE_EFFECT_IMPORT]) {
    for (const match of source.matchAll(pattern)) {
      const spec = match[1];
      if (spec.startsWith(".")) found.push(resolve(dirname(file), spec));
    }
  }
  return found;
}

/** "src/broker/x.ts" -> "broker"; "src/main.ts" -> "main"; "routes/x.ts" -> "routes". */
function layerOf(path: string): string {
  const rel = relative(ROOT, path).split("/");
  if (rel[0] !== "src") return rel[0];
  return rel.length === 2 ? rel[1].replace(/\.ts$/, "") : rel[1];
}

function findCycles(graph: Map<string, string[]>): string[][] {
  const cycles: string[][] = [];
  const state = new Map<string, "visiting" | "done">();
  const stack: string[] = [];
  const visit = (node: string) => {
    state.set(node, "visiting");
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      const s = state.get(next);
      if (s === "visiting") cycles.push([...stack.slice(stack.indexOf(next)), next]);
      else if (s === undefined && graph.has(next)) visit(next);
    }
    stack.pop();
    state.set(node, "done");
  };
  for (const node of graph.keys()) if (!state.has(node)) visit(node);
  return cycles;
}

async function main(): Promise<number> {
  const problems: string[] = [];
  const graph = new Map<string, string[]>();
  for (const top of ["src", "routes", "cluster", "scripts"]) {
    for await (const file of walk(join(ROOT, top))) {
      const source = await Deno.readTextFile(file);
      const imports = localImports(file, source);
      graph.set(file, imports);
      const from = layerOf(file);
      const rel = relative(ROOT, file);
      const runtimeApi = from === "transport" || from === "scripts"
        ? null
        : RUNTIME_API.exec(codeOf(source));
      if (runtimeApi) {
        problems.push(
          `${rel}: uses ${
            runtimeApi[0]
          }* outside src/transport/ (use a node: built-in that Deno and Bun implement)`,
        );
      }
      for (const target of imports) {
        const to = layerOf(target);
        const targetRel = relative(ROOT, target);
        if (from === "scripts") {
          if (ENGINE_INTERNALS.some((internal) => targetRel.startsWith(internal))) {
            problems.push(
              `${rel}: imports ${targetRel}; scripts/ reach the engine through src/mod.ts`,
            );
          }
          continue;
        }
        if (
          (from === "broker" || from === "events" || from === "auth") && to === "backbone" &&
          !BACKBONE_SEAM.has(targetRel)
        ) {
          problems.push(`${rel}: imports ${targetRel}; src/${from}/ sees only the backbone seam`);
          continue;
        }
        if (from === "routes" || from === "cluster") {
          if (targetRel.startsWith("src/") && targetRel !== "src/mod.ts") {
            problems.push(`${rel}: imports ${targetRel}; ${from}/ may only import src/mod.ts`);
          }
          continue;
        }
        // compose.ts is the composition root's config mapping, split from main.ts so that
        // src/mod.ts can export it without importing routes/ (which imports src/mod.ts).
        if (from === to || from === "main" || from === "compose" || from === "mod") continue;
        const allowed = ALLOWED[from];
        if (!allowed) {
          problems.push(`${rel}: folder src/${from}/ has no layering rule in check_layers.ts`);
          continue;
        }
        if (!allowed.includes(to)) {
          problems.push(`${rel}: src/${from}/ may not import src/${to}/ (${targetRel})`);
        }
      }
    }
  }
  for (const cycle of findCycles(graph)) {
    problems.push(`import cycle: ${cycle.map((f) => relative(ROOT, f)).join(" -> ")}`);
  }
  if (problems.length > 0) {
    console.error(`Layering violations (${problems.length}):\n  ${problems.join("\n  ")}`);
    return 1;
  }
  console.log("Layering: ok");
  return 0;
}

Deno.exit(await main());
