/**
 * What the fault scenarios share: starting a cluster of real processes (nats-server, front-ends,
 * haproxy) and stopping all of it, asking the front-ends' admin APIs where a client is and whether
 * a session's queue is empty, polling for a condition with a deadline, and the shape of a
 * scenario's result.
 *
 * @module
 */

import {
  type FrontEnd,
  type FrontEndOptions,
  type LoadBalancer,
  startFrontEnd,
  startLoadBalancer,
} from "../cluster.ts";
import type { StreamReport, Totals } from "./streams.ts";

/** One property a scenario checks beyond the books (a will sent once, a CONNECT refused, ...). */
export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

/** What a scenario found. */
export interface ScenarioResult {
  scenario: string;
  streams: StreamReport[];
  totals: Totals;
  checks: Check[];
  /** Figures worth printing (e.g. front-end memory). */
  figures?: Record<string, number | string>;
}

/** Progress lines of a run (`deno task chaos` prints them; tests stay quiet). */
export type Log = (line: string) => void;

/** Resolves once `check` holds, asking again every `pollMs` (bounded by `timeoutMs`). */
export async function until(
  check: () => Promise<boolean> | boolean,
  what: string,
  timeoutMs = 60_000,
  pollMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let ok = false;
    try {
      ok = await check();
    } catch {
      ok = false; // A front-end not answering yet: ask again.
    }
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/** GET of a front-end's admin API; undefined on 404. */
export async function admin<T>(frontEnd: FrontEnd, path: string): Promise<T | undefined> {
  const response = await fetch(`http://127.0.0.1:${frontEnd.adminPort}/api/v1${path}`, {
    signal: AbortSignal.timeout(10_000),
  });
  if (response.status === 404) {
    await response.body?.cancel();
    return undefined;
  }
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return await response.json() as T;
}

/** The node holding a client's connection, asked of a running front-end. */
export async function nodeOf(frontEnds: FrontEnd[], clientId: string): Promise<string> {
  const asked = frontEnds.find((frontEnd) => !frontEnd.exited)!;
  const client = await admin<{ node: string }>(
    asked,
    `/clients/${encodeURIComponent(clientId)}`,
  );
  if (!client) throw new Error(`client ${clientId} is not connected`);
  return client.node;
}

/**
 * Whether a session is connected and its queue holds nothing (neither waiting nor unacknowledged
 * deliveries): nothing can come to it again.
 */
export async function sessionDrained(frontEnds: FrontEnd[], clientId: string): Promise<boolean> {
  const asked = frontEnds.find((frontEnd) => !frontEnd.exited)!;
  const session = await admin<{ connected: boolean; queued: number; inflight: number }>(
    asked,
    `/sessions/${encodeURIComponent(clientId)}`,
  );
  return session !== undefined && session.connected && session.queued === 0 &&
    session.inflight === 0;
}

/** Front-ends and a load balancer, stopped together. */
export class FrontEnds {
  readonly list: FrontEnd[] = [];
  balancer: LoadBalancer | undefined;

  /** Starts `count` front-ends (in parallel) named `{name}1`... with `options`. */
  async start(
    count: number,
    options: Omit<FrontEndOptions, "nodeId">,
    name = "node",
  ): Promise<FrontEnd[]> {
    const started = await Promise.allSettled(
      Array.from(
        { length: count },
        (_, i) => startFrontEnd({ ...options, nodeId: `${name}${i + 1}` }),
      ),
    );
    for (const result of started) if (result.status === "fulfilled") this.list.push(result.value);
    const failed = started.find((result) => result.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
    return this.list;
  }

  /** Starts one front-end again with the options and ports it had, in place of the old one. */
  async restart(frontEnd: FrontEnd): Promise<FrontEnd> {
    const again = await startFrontEnd(frontEnd.options);
    this.list[this.list.indexOf(frontEnd)] = again;
    return again;
  }

  /** haproxy in front of every front-end started so far. */
  async balance(options: { maxconn?: number } = {}): Promise<LoadBalancer> {
    this.balancer = await startLoadBalancer(this.list.map((f) => f.port), 0, options);
    return this.balancer;
  }

  /** The front-end of a node id. */
  byId(nodeId: string): FrontEnd {
    const found = this.list.find((frontEnd) => frontEnd.nodeId === nodeId);
    if (!found) throw new Error(`no front-end ${nodeId}`);
    return found;
  }

  async close(): Promise<void> {
    await this.balancer?.stop();
    await Promise.all(this.list.map((frontEnd) => frontEnd.stop()));
  }
}

/** `{ "128": 2 }` as `0x80 x2`. */
export function describeRefusals(refused: Record<string, number>): string {
  const parts = Object.entries(refused).map(([code, count]) =>
    `${/^\d+$/.test(code) ? "0x" + Number(code).toString(16) : code} x${count}`
  );
  return parts.length === 0 ? "none" : parts.join(", ");
}
