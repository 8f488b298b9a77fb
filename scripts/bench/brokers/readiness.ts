/**
 * Port helpers for brokers that cannot report the port they bound.
 *
 * @module
 */

import type { ManagedProcess } from "../process_group.ts";

/**
 * Finds a free TCP port by binding port 0 and closing it again. Only for brokers that cannot bind port 0
 * and report it (Mosquitto); the short race is reported as a start failure, never hidden.
 *
 * @param hostname The address to probe.
 * @returns A port that was free a moment ago.
 */
export function reserveFreePort(hostname: string): number {
  const listener = Deno.listen({ hostname, port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** Where to probe and for how long. */
export interface PortProbe {
  /** The address. */
  hostname: string;
  /** The port. */
  port: number;
  /** How long to wait. */
  timeoutMs: number;
}

/**
 * Waits until `hostname:port` accepts TCP connections, failing early if the process exits.
 *
 * @param process The broker process.
 * @param probe Address, port and time limit.
 */
export async function waitForPort(process: ManagedProcess, probe: PortProbe): Promise<void> {
  const { hostname, port, timeoutMs } = probe;
  const deadline = performance.now() + timeoutMs;
  while (true) {
    if (process.exited) {
      throw new Error(`${process.name} exited before listening on ${port}:\n${process.tail()}`);
    }
    try {
      (await Deno.connect({ hostname, port })).close();
      return;
    } catch (error) {
      if (performance.now() > deadline) {
        throw new Error(`${process.name} is not listening on ${hostname}:${port}`, {
          cause: error,
        });
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}
