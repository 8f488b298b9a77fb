/**
 * Fault scenario: slow and absent consumers. Two front-ends with small session queue bounds
 * (`mqtt.maxQueuedMessages`, `mqtt.maxQueuedBytes`); each stream's subscriber is on one front-end
 * and its publisher on the other.
 *
 * - absent: the subscriber (MQTT 5, QoS 1) disconnects, its session stays; the publisher sends
 *   more than the message bound.
 * - bytes: the same with QoS 2 and 4 KiB payloads, so the byte bound is met first.
 * - slow: the subscriber stays connected but stops reading its socket; 1 KiB messages flood it.
 * - absent-3.1.1: as absent, with a 3.1.1 publisher, which has no reason codes to hear "full" by.
 *
 * Expected: a session's queue holds no more than its bounds in JetStream; an MQTT 5 publisher that
 * meets a bound gets 0x97 (Quota exceeded) and every message acknowledged as a success reaches the
 * subscriber once it reads again (never an ack followed by a drop); the front-ends' resident memory
 * grows by a bounded amount. A 3.1.1 publisher's messages beyond the bound are acknowledged (it has
 * no way to be told) and dropped for that subscriber: counted apart, as the protocol's limit.
 *
 * @module
 */

import { startNatsServer } from "../../test/helpers/nats.ts";
import {
  type Check,
  FrontEnds,
  type Log,
  rssMiB,
  type ScenarioResult,
  settle,
  until,
} from "./harness.ts";
import { SequenceStream, type StreamSpec, totalsOf } from "./streams.ts";

export interface SlowConsumersOptions {
  /** Messages per stream (at least 3 times the message bound is sensible). */
  messages: number;
  log?: Log;
}

const PREFIX = "slow";
const MAX_MESSAGES = 50;
const MAX_BYTES = 64 * 1024;
/** How far past a bound a queue may run (other nodes' publishes between two counts). */
const SLACK = 8;

/** The largest pending + unacknowledged count over the messages stream's consumers. */
async function largestConsumer(monitorUrl: string): Promise<{ count: number; consumers: number }> {
  const response = await fetch(`${monitorUrl}/jsz?consumers=true`);
  const jsz = await response.json() as {
    account_details?: {
      stream_detail?: {
        name: string;
        consumer_detail?: { num_pending: number; num_ack_pending: number }[];
      }[];
    }[];
  };
  let count = 0;
  let consumers = 0;
  for (const account of jsz.account_details ?? []) {
    for (const stream of account.stream_detail ?? []) {
      if (stream.name !== `${PREFIX}-msgs`) continue;
      for (const consumer of stream.consumer_detail ?? []) {
        consumers++;
        count = Math.max(count, consumer.num_pending + consumer.num_ack_pending);
      }
    }
  }
  return { count, consumers };
}

export async function slowConsumers(options: SlowConsumersOptions): Promise<ScenarioResult> {
  const log = options.log ?? (() => {});
  const count = Math.max(options.messages, 3 * MAX_MESSAGES);
  const specs: (StreamSpec & { absent: boolean })[] = [
    { name: "slow-absent", qos: 1, protocolVersion: 5, count, absent: true, padding: 100 },
    {
      name: "slow-bytes",
      qos: 2,
      protocolVersion: 5,
      count: MAX_MESSAGES,
      absent: true,
      padding: 4096,
    },
    { name: "slow-reader", qos: 1, protocolVersion: 5, count, absent: false, padding: 1024 },
    { name: "slow-absent-v311", qos: 1, protocolVersion: 4, count, absent: true, padding: 100 },
  ];
  await using nats = await startNatsServer();
  const cluster = new FrontEnds();
  const streams: SequenceStream[] = [];
  try {
    const frontEnds = await cluster.start(2, {
      natsUrl: nats.url,
      prefix: PREFIX,
      backbone: { leaseTimeout: "3s", ackWait: "2s" },
      extra: {
        mqtt: {
          maxQueuedMessages: MAX_MESSAGES,
          maxQueuedBytes: MAX_BYTES,
          slowConsumerTimeout: "2s",
        },
      },
    });
    const [near, far] = frontEnds.map((f) => [{ host: "127.0.0.1", port: f.port }]);
    for (const spec of specs) {
      streams.push(await SequenceStream.open(spec, { subscriber: near, publisher: far }));
    }
    const rssBefore = frontEnds.map((f) => rssMiB(f.pid));
    for (const [i, spec] of specs.entries()) {
      if (spec.absent) await streams[i].subscriber.endAsync();
      else streams[i].subscriber.stream.pause();
    }
    log("subscribers away or not reading; publishing");
    await Promise.all(streams.map((stream) => stream.publish()));
    const full = await largestConsumer(nats.monitorUrl);
    const rssAfter = frontEnds.map((f) => rssMiB(f.pid));
    log(`largest queue in JetStream: ${full.count} messages (bound ${MAX_MESSAGES})`);
    for (const [i, spec] of specs.entries()) {
      if (spec.absent) streams[i].subscriber.reconnect();
      else streams[i].subscriber.stream.resume();
    }
    await until(() => streams.every((s) => s.subscriber.connected), "subscribers back", 30_000);
    const v311 = streams.filter((_, i) => specs[i].protocolVersion === 4);
    const v5 = streams.filter((_, i) => specs[i].protocolVersion === 5);
    await settle(v5, frontEnds, log);
    await settle(v311, frontEnds, log, 10_000);
    const reports = v5.map((stream) => stream.report());
    const refusedQuota = reports.reduce((n, r) => n + (r.refused["151"] ?? 0), 0);
    const v311Report = v311[0].report();
    const byName = (name: string) => reports.find((r) => r.name === name)!;
    const checks: Check[] = [
      {
        name: "a session queue in JetStream holds no more than its message bound",
        ok: full.count <= MAX_MESSAGES + SLACK,
        detail: `largest ${full.count}, bound ${MAX_MESSAGES} (+${SLACK} between counts)`,
      },
      {
        name: "MQTT 5 publishers meeting a bound get 0x97",
        ok: refusedQuota > 0 && byName("slow-absent").refused["151"] > 0 &&
          byName("slow-bytes").refused["151"] > 0,
        detail: `0x97 x${refusedQuota}`,
      },
      {
        name: "the byte bound holds",
        ok: byName("slow-bytes").acknowledged * 4096 <= MAX_BYTES + SLACK * 4096,
        detail: `${byName("slow-bytes").acknowledged} x 4 KiB acknowledged, bound ${
          MAX_BYTES / 1024
        } KiB`,
      },
      {
        name: "front-end memory bounded while a subscriber does not read",
        ok: rssAfter.every((after, i) => after - rssBefore[i] < 128),
        detail: `RSS MiB ${rssBefore.join("/")} -> ${rssAfter.join("/")}`,
      },
    ];
    return {
      scenario: "slow and absent consumers",
      streams: reports,
      totals: totalsOf(reports),
      checks,
      figures: {
        v311AckedThenDropped: v311Report.lost,
        v311Acknowledged: v311Report.acknowledged,
        jetstreamConsumers: full.consumers,
      },
    };
  } finally {
    await Promise.all(streams.map((stream) => stream.close()));
    await cluster.close();
  }
}
