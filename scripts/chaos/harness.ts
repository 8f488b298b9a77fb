/**
 * What the fault scenarios share: starting a cluster of real processes (nats-server, front-ends,
 * haproxy) and stopping all of it, asking the front-ends' admin APIs where a client is and whether
 * a session's queue is empty, polling for a condition with a deadline, and the shape of a
 * scenario's result.
 *
 * @module
 */

import mqtt, { type MqttClient } from "mqtt";
import {
  type FrontEnd,
  type FrontEndOptions,
  type LoadBalancer,
  startFrontEnd,
  startLoadBalancer,
} from "../cluster.ts";
import type { SequenceStream, StreamReport, StreamSpec, Totals } from "./streams.ts";

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
 * Whether a session's queue holds nothing (neither waiting nor unacknowledged
 * deliveries): nothing can come to it again.
 */
export async function sessionDrained(frontEnds: FrontEnd[], clientId: string): Promise<boolean> {
  const asked = frontEnds.find((frontEnd) => !frontEnd.exited)!;
  const session = await admin<{ connected: boolean; queued: number; inflight: number }>(
    asked,
    `/sessions/${encodeURIComponent(clientId)}`,
  );
  return session !== undefined && session.queued === 0 && session.inflight === 0;
}

/** Front-ends and a load balancer, stopped together. */
export class FrontEnds {
  readonly list: FrontEnd[] = [];
  balancer: LoadBalancer | undefined;

  /** Starts `count` front-ends named `{name}1`... with `options`. */
  async start(
    count: number,
    options: Omit<FrontEndOptions, "nodeId">,
    name = "node",
  ): Promise<FrontEnd[]> {
    // The first alone creates the streams and buckets; the others then start together. (Front-
    // ends creating them at once all start, but nats-server can leave one of two identical creates
    // unanswered, so one of them waits a request timeout before it asks again.)
    const first = await startFrontEnd({ ...options, nodeId: `${name}1` });
    this.list.push(first);
    const started = await Promise.allSettled(
      Array.from(
        { length: count - 1 },
        (_, i) => startFrontEnd({ ...options, nodeId: `${name}${i + 2}` }),
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

/** What a probe client saw: a CONNACK code, a PUBACK reason code, or the connection closing. */
export type ProbeOutcome =
  | { kind: "connack"; code: number }
  | { kind: "puback"; code: number }
  | { kind: "closed" }
  | { kind: "timeout" };

/** The CONNACK code (MQTT 5 reason code or 3.1.1 return code) a fresh client gets from `port`. */
export async function connackCode(
  port: number,
  protocolVersion: 4 | 5,
  clientId: string,
  timeoutMs = 15_000,
): Promise<ProbeOutcome> {
  const client = mqtt.connect({
    host: "127.0.0.1",
    port,
    clientId,
    protocolVersion,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: timeoutMs,
  });
  client.on("error", () => {});
  try {
    return await new Promise<ProbeOutcome>((resolve) => {
      const timer = setTimeout(() => resolve({ kind: "timeout" }), timeoutMs);
      client.on("packetreceive", (packet) => {
        if (packet.cmd !== "connack") return;
        clearTimeout(timer);
        const code = protocolVersion === 5
          ? (packet as { reasonCode?: number }).reasonCode ?? 0
          : (packet as { returnCode?: number }).returnCode ?? 0;
        resolve({ kind: "connack", code });
      });
      client.on("close", () => {
        clearTimeout(timer);
        resolve({ kind: "closed" });
      });
    });
  } finally {
    await client.endAsync(true);
  }
}

/** A connected probe client that publishes one QoS 1 message when asked. */
export class PublishProbe {
  readonly client: MqttClient;
  #closed = false;
  #acks: ((code: number) => void)[] = [];
  #closes: (() => void)[] = [];

  private constructor(client: MqttClient) {
    this.client = client;
    client.on("packetreceive", (packet) => {
      if (packet.cmd === "puback") {
        const code = (packet as { reasonCode?: number }).reasonCode ?? 0;
        for (const ack of this.#acks.splice(0)) ack(code);
      }
    });
    client.on("close", () => {
      this.#closed = true;
      for (const close of this.#closes.splice(0)) close();
    });
  }

  /** Connects straight to a front-end's port (no reconnection). */
  static async open(port: number, protocolVersion: 4 | 5, clientId: string): Promise<PublishProbe> {
    const client = mqtt.connect({
      host: "127.0.0.1",
      port,
      clientId,
      protocolVersion,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: 15_000,
    });
    client.on("error", () => {});
    await new Promise<void>((resolve, reject) => {
      client.once("connect", () => resolve());
      client.once("close", () => reject(new Error(`${clientId}: did not connect`)));
    });
    return new PublishProbe(client);
  }

  /** Publishes one QoS 1 message; resolves with the PUBACK's code or the connection's end. */
  publish(topic: string, timeoutMs = 15_000): Promise<ProbeOutcome> {
    if (this.#closed) return Promise.resolve({ kind: "closed" });
    return new Promise<ProbeOutcome>((resolve) => {
      const timer = setTimeout(() => resolve({ kind: "timeout" }), timeoutMs);
      this.#acks.push((code) => {
        clearTimeout(timer);
        resolve({ kind: "puback", code });
      });
      this.#closes.push(() => {
        clearTimeout(timer);
        resolve({ kind: "closed" });
      });
      this.client.publish(topic, "probe", { qos: 1 }, () => {});
    });
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }
}

/** `connack 0x88`, `puback 0x80`, `closed`. */
export function describeOutcome(outcome: ProbeOutcome): string {
  switch (outcome.kind) {
    case "connack":
    case "puback":
      return `${outcome.kind} 0x${outcome.code.toString(16).padStart(2, "0")}`;
    default:
      return outcome.kind;
  }
}

/** Longest wait for the books to balance after the publishers finished (a failure guard). */
// A session whose consumer's leader was on a NATS node that died waits for its pulls to expire
// (30 s and 5 s of silence) before it pulls again: the guard must be longer.
export const SETTLE_MS = 60_000;
/** Longest wait for the subscribers' queues to empty once every message arrived (a guard). */
const DRAIN_MS = 20_000;

/**
 * Waits until every stream's subscriber received every acknowledged message and its session
 * queue is empty (nothing can come again), or the guard time passes (the books then show it).
 */
export async function settle(
  streams: SequenceStream[],
  frontEnds: FrontEnd[],
  log: Log,
  timeoutMs = SETTLE_MS,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  await Promise.all(streams.map((stream) => stream.receivedAll(deadline)));
  const running = () => frontEnds.filter((frontEnd) => !frontEnd.exited);
  let waiting: string[] = [];
  await until(
    async () => {
      waiting = [];
      for (const stream of streams) {
        if (!(await sessionDrained(running(), stream.subscriberId))) {
          waiting.push(stream.subscriberId);
        }
      }
      return waiting.length === 0;
    },
    "subscriber queues empty",
    Math.min(DRAIN_MS, Math.max(1000, deadline - Date.now())),
  ).catch(async (error) => {
    const states = [];
    for (const id of waiting) {
      const asked = running()[0];
      states.push(`${id} ${JSON.stringify(await admin(asked, `/sessions/${id}`).catch(String))}`);
    }
    log(`${error}: ${states.join("; ")}`);
  });
}

/** The streams of a scenario: QoS 1 and 2, MQTT 5 and 3.1.1, `parts` of each. */
export function streamSpecs(
  prefix: string,
  count: number,
  window: number,
  parts = 1,
): StreamSpec[] {
  const specs: StreamSpec[] = [];
  for (const protocolVersion of [5, 4] as const) {
    for (const qos of [1, 2] as const) {
      for (let part = 0; part < parts; part++) {
        specs.push({
          name: `${prefix}-q${qos}-v${protocolVersion}${parts > 1 ? `-${part}` : ""}`,
          qos,
          protocolVersion,
          count,
          window,
        });
      }
    }
  }
  return specs;
}

/** Resident memory of a process in MiB (Linux `/proc`), or NaN. */
export function rssMiB(pid: number): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const kib = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
    return Math.round(kib / 1024 * 10) / 10;
  } catch {
    return NaN;
  }
}
