/**
 * Fault scenario: a front-end cut off from NATS while its clients stay connected to it. Front-end
 * A reaches NATS through a TCP relay of the test's own (test/helpers/tcp_relay.ts), front-end B
 * directly; every stream client lists A first and B second, so all start on A. Half way the relay
 * stops: A can neither store nor deliver. Its clients are then made to reconnect (as a client that
 * gave up on a silent broker would) and land on B, which takes their sessions over once A's lease
 * ran out. The relay then starts again and A comes back.
 *
 * Expected: while cut off, A acknowledges no QoS 1/2 publish as a success (MQTT 5: a reason code,
 * 3.1.1: disconnected); B takes the sessions over; when A is back nothing acknowledged was lost
 * and no QoS 2 message comes twice.
 *
 * @module
 */

import { startNatsServer } from "../../test/helpers/nats.ts";
import { TcpRelay } from "../../test/helpers/tcp_relay.ts";
import { startFrontEnd } from "../cluster.ts";
import {
  type Check,
  describeOutcome,
  FrontEnds,
  type Log,
  nodeOf,
  type ProbeOutcome,
  PublishProbe,
  type ScenarioResult,
  settle,
  streamSpecs,
  until,
} from "./harness.ts";
import { SequenceStream, totalsOf } from "./streams.ts";

export interface NatsCutOptions {
  messages: number;
  window?: number;
  log?: Log;
}

const PREFIX = "cut";
const LEASE_MS = 3000;

export async function natsCut(options: NatsCutOptions): Promise<ScenarioResult> {
  const log = options.log ?? (() => {});
  const specs = streamSpecs(PREFIX, options.messages, options.window ?? 4);
  await using nats = await startNatsServer();
  await using relay = TcpRelay.start(nats.port);
  const cluster = new FrontEnds();
  const streams: SequenceStream[] = [];
  const probes: PublishProbe[] = [];
  try {
    const backbone = { leaseTimeout: `${LEASE_MS / 1000}s`, ackWait: "2s", timeout: "2s" };
    const a = await startFrontEnd({ nodeId: "a", natsUrl: relay.url, prefix: PREFIX, backbone });
    cluster.list.push(a);
    const b = await startFrontEnd({ nodeId: "b", natsUrl: nats.url, prefix: PREFIX, backbone });
    cluster.list.push(b);
    const servers = [{ host: "127.0.0.1", port: a.port }, { host: "127.0.0.1", port: b.port }];
    for (const spec of specs) {
      streams.push(await SequenceStream.open(spec, { publisher: servers, subscriber: servers }));
    }
    const onA = async () => {
      const ids = streams.flatMap((stream) => [stream.publisherId, stream.subscriberId]);
      let count = 0;
      for (const id of ids) if ((await nodeOf([b], id).catch(() => "")) === "a") count++;
      return count;
    };
    const startedOnA = await onA();
    const probe5 = await PublishProbe.open(a.port, 5, `${PREFIX}-probe-v5`);
    probes.push(probe5);
    const probe4 = await PublishProbe.open(a.port, 4, `${PREFIX}-probe-v4`);
    probes.push(probe4);

    const third = Math.floor(options.messages / 3);
    await Promise.all(streams.map((stream) => stream.publish(third)));
    await relay.stop();
    const cutAt = Date.now();
    log(`front-end a cut off from NATS (${startedOnA} stream clients on it)`);
    const cut: Record<string, ProbeOutcome> = {};
    cut.publishV5 = await probe5.publish("chaos/cut/probe");
    cut.publishV4 = await probe4.publish("chaos/cut/probe");
    log(
      `while cut off: ${
        Object.entries(cut).map(([k, v]) => `${k} ${describeOutcome(v)}`).join(", ")
      }`,
    );
    // The clients give up on A and reconnect: mqtt.js goes on to B.
    for (const stream of streams) {
      for (const client of [stream.publisher, stream.subscriber]) client.stream.destroy();
    }
    const middle = Promise.all(streams.map((stream) => stream.publish(2 * third)));
    let takenOverMs = -1;
    await until(async () => (await onA()) === 0, "sessions taken over on b", 60_000, 100)
      .then(() => takenOverMs = Date.now() - cutAt, (error) => log(String(error)));
    log(`every stream client on b ${takenOverMs} ms after the cut (lease ${LEASE_MS} ms)`);
    await middle;
    relay.start();
    log("front-end a reconnected to NATS");
    let attempt = 0;
    const backMs = await until(
      async () => {
        const probe = await PublishProbe.open(a.port, 5, `${PREFIX}-back-${attempt++}`);
        try {
          const outcome = await probe.publish("chaos/cut/back", 5000);
          return outcome.kind === "puback" && outcome.code < 0x80;
        } finally {
          await probe.close();
        }
      },
      "front-end a serving again",
      60_000,
      200,
    ).then(() => Date.now() - cutAt, () => -1);
    await Promise.all(streams.map((stream) => stream.publish()));
    log("publishers done; waiting for every acknowledged message");
    await settle(streams, cluster.list, log);
    const checks: Check[] = [
      {
        name: "MQTT 5 publish on the cut-off front-end not acknowledged as a success",
        ok: cut.publishV5.kind === "closed" ||
          (cut.publishV5.kind === "puback" && cut.publishV5.code >= 0x80),
        detail: describeOutcome(cut.publishV5),
      },
      {
        name: "3.1.1 publisher on the cut-off front-end disconnected (no PUBACK)",
        ok: cut.publishV4.kind === "closed",
        detail: describeOutcome(cut.publishV4),
      },
      {
        name: "sessions of the cut-off front-end taken over on the other",
        ok: startedOnA > 0 && takenOverMs >= 0,
        detail: `${startedOnA} clients, ${takenOverMs} ms after the cut`,
      },
      {
        name: "the cut-off front-end serves again once reconnected",
        ok: backMs >= 0 && !a.exited,
        detail: backMs >= 0 ? `${backMs} ms after the cut` : "not within 60 s",
      },
    ];
    const reports = streams.map((stream) => stream.report());
    return {
      scenario: "front-end cut off from NATS",
      streams: reports,
      totals: totalsOf(reports),
      checks,
      figures: { takeoverMs: takenOverMs },
    };
  } finally {
    await Promise.all(probes.map((probe) => probe.close()));
    await Promise.all(streams.map((stream) => stream.close()));
    await cluster.close();
  }
}
