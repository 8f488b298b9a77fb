/**
 * The sockets of the runtime this process runs on: Bun's when `Bun` is defined, else Deno's.
 * Both implementations are loaded on either runtime; each touches its runtime's API only when
 * called.
 *
 * @module
 */

import { bunSockets } from "./bun_sockets.ts";
import { denoSockets } from "./deno_sockets.ts";
import type { Sockets } from "./sockets.ts";

/** The {@linkcode Sockets} of the running runtime. */
export function runtimeSockets(): Sockets {
  return "Bun" in globalThis ? bunSockets : denoSockets;
}
