/**
 * Isolation: does one subscriber that stops reading slow everyone else down? Publishers send QoS 1
 * to a topic with one healthy QoS 1 subscriber, measured twice on the same broker: alone, then with
 * a second QoS 1 subscriber to the same topic that connects, subscribes and never reads its socket
 * again (so never acknowledges: a hung device). The healthy subscriber must get every message both
 * times; the figure is its delivered rate in each window.
 *
 * @module
 */

import { connectMqtt, type MqttConnection, subscribeMqtt } from "../mqtt_client.ts";
import type { SubscriberSpec } from "../load/protocol.ts";
import { type LoadPlan, loadTarget, runLoad } from "../load/run_load.ts";
import type { BenchCase, CaseContext, Measurement } from "./bench_case.ts";
import { publishers, twoWorkers } from "./message_cases.ts";

const TOPIC = "bench/isolation";
const QOS = 1;
const PAYLOAD_BYTES = 16;

function plan(publisherCount: number): LoadPlan {
  const healthy: SubscriberSpec = {
    index: 0,
    clientId: "sub-healthy",
    filter: TOPIC,
    qos: QOS,
    recordLatency: false,
    coalesce: false,
  };
  return twoWorkers({
    publishers: publishers(publisherCount, TOPIC, QOS, PAYLOAD_BYTES),
    subscribers: [healthy],
    groups: [[0]],
  });
}

/**
 * The isolation case: QoS 1 fan-in to a healthy subscriber, alone and next to a stuck one.
 *
 * @param publisherCount Publishers (as for fan-in).
 * @returns The case.
 */
export function isolationCases(publisherCount: number): BenchCase[] {
  const load = plan(publisherCount);
  return [{
    id: `isolation/qos${QOS}/${PAYLOAD_BYTES}B`,
    scenario: "isolation",
    params: { qos: QOS, payloadBytes: PAYLOAD_BYTES, publishers: publisherCount, subscribers: 1 },
    metrics: [
      {
        key: "stuck",
        label: "healthy subscriber, stuck one present",
        unit: "msg/s",
        higherIsBetter: true,
      },
      { key: "alone", label: "healthy subscriber alone", unit: "msg/s", higherIsBetter: true },
    ],
    hostCount: 1,
    async run({ broker, timing }: CaseContext): Promise<Measurement> {
      const target = loadTarget(broker);
      const alone = await runLoad(load, { target, timing });
      let stuck: MqttConnection | undefined;
      try {
        stuck = await connectMqtt({
          hostname: target.hostname,
          port: target.ports[0],
          clientId: "sub-stuck",
        });
        await subscribeMqtt(stuck, { filter: TOPIC, qos: QOS });
        // From here on nothing reads this socket: no PUBACK ever leaves it.
        const withStuck = await runLoad(load, { target, timing });
        const notes = withStuck.integrity.lost > 0 || alone.integrity.lost > 0
          ? [
            `healthy subscriber lost messages: ${alone.integrity.lost} alone, ${withStuck.integrity.lost} with the stuck one`,
          ]
          : [];
        return {
          metrics: { stuck: withStuck.deliveredPerSecond, alone: alone.deliveredPerSecond },
          integrity: withStuck.integrity,
          cpu: withStuck.cpu,
          notes,
        };
      } finally {
        try {
          stuck?.conn.close();
        } catch {
          // The broker closed it already (a slow-consumer timeout).
        }
      }
    },
  }];
}
