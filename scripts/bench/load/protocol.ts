/**
 * Messages between the load coordinator (main thread) and its load workers, and the client specs a
 * worker is given.
 *
 * @module
 */

import type { SequenceReport } from "./sequence_tracker.ts";

/** One publishing client. */
export interface PublisherSpec {
  /** Publisher index, written into every payload. */
  index: number;
  /** MQTT client id (Aedes accepts at most 23 characters). */
  clientId: string;
  /** Topic to publish to. */
  topic: string;
  /** QoS of every publish. */
  qos: number;
  /** Payload size in bytes (at least 16). */
  payloadSize: number;
  /**
   * Messages in flight: at QoS 1/2 unacknowledged publishes; at QoS 0 (closed loop) messages written but
   * not yet received by the slowest delivery group.
   */
  window: number;
  /** Paced mode: messages per second. Absent: closed loop, as fast as the window allows. */
  rate?: number;
}

/** One subscribing client. */
export interface SubscriberSpec {
  /** Subscriber index (into the shared counters and the delivery groups). */
  index: number;
  /** MQTT client id. */
  clientId: string;
  /** Topic filter to subscribe to. */
  filter: string;
  /** Requested QoS. */
  qos: number;
  /** Record the latency of messages sent while the measuring window is open. */
  recordLatency: boolean;
  /**
   * After a small read, wait one timer tick so the next read takes a batch. Read-per-message costs the
   * generator more than it costs a broker, so without this a QoS 0 subscriber that is "caught up" can
   * become the bottleneck. Never with acknowledgements (it would throttle the broker's in-flight window)
   * nor for latency.
   */
  coalesce: boolean;
}

/** Everything a load worker needs. */
export interface WorkerSpec {
  /** Broker address. */
  hostname: string;
  /** Broker ports: client `i` (publishers and subscribers counted apart) uses `ports[i % n]`. */
  ports: number[];
  /** Publisher count of the whole run. */
  publisherCount: number;
  /** Subscriber count of the whole run. */
  subscriberCount: number;
  /** Subscriber indices per delivery group (for QoS 0 flow control). */
  groups: number[][];
  /** This worker's publishers. */
  publishers: PublisherSpec[];
  /** This worker's subscribers. */
  subscribers: SubscriberSpec[];
  /** Backing store of the shared counters. */
  counters: SharedArrayBuffer;
}

/** Coordinator -> worker. */
export type ToWorker =
  | { kind: "init"; spec: WorkerSpec }
  | { kind: "start" }
  | { kind: "mark-start" }
  | { kind: "mark-end" }
  | { kind: "stop" }
  | { kind: "finish" };

/** Worker -> coordinator. */
export type FromWorker =
  | { kind: "ready" }
  | { kind: "stopped"; published: { index: number; count: number }[]; unacked: number }
  | {
    kind: "finished";
    reports: { index: number; report: SequenceReport }[];
    latencies: number[];
  }
  | { kind: "error"; message: string };
