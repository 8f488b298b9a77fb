/**
 * V8 options the broker sets on itself at start, on Deno (Bun's JavaScriptCore has none of them).
 *
 * `--no-maglev-pretenure-store-values`: V8's mid-tier compiler allocates an object in the old
 * generation when it is stored into an object from a site V8 decided to allocate there. The
 * broker's long-lived objects (connections, queues) are such sites, so per-message objects stored
 * into them (a QoS 2 flow's state) were born old, died old, and kept the young objects they point
 * to alive through young collections: under QoS 2 fan-in the heap grew by about 0.55 MB per young
 * collection, a full collection came every second, and the heap reached 111 MB; without it, none
 * came and the heap stayed at 40 MB (see docs/benchmarks.md).
 *
 * Set from code rather than with `--v8-flags` in `deno task start`: Deno refuses to start on a
 * V8 flag its V8 does not know, and this one is a V8 internal that may be renamed; here an unknown
 * one changes nothing. It applies to what is compiled after it, which is all the broker's hot code.
 *
 * @module
 */

import v8 from "node:v8";

/** The V8 flags set at start (Deno only). */
export const RUNTIME_V8_FLAGS: readonly string[] = ["--no-maglev-pretenure-store-values"];

/** Sets {@linkcode RUNTIME_V8_FLAGS} on Deno; does nothing on Bun. */
export function tuneRuntime(): void {
  if ((globalThis as { Bun?: unknown }).Bun !== undefined) return;
  for (const flag of RUNTIME_V8_FLAGS) {
    try {
      v8.setFlagsFromString(flag);
    } catch {
      // An older or newer V8 without it: the broker runs as before.
    }
  }
}
