/**
 * Fault scenario: one node of a 3-node NATS cluster killed (SIGKILL) under load, with every
 * stream and bucket at 3 replicas. Two front-ends behind haproxy, each given all three NATS URLs;
 * the node killed is the leader of the messages stream, so a new leader must be elected while
 * messages are being stored and delivered.
 *
 * Expected: publishes during the election may be refused (a reason code, or a 3.1.1 publisher
 * disconnected and resending) but none acknowledged is lost and no QoS 2 message comes twice; the
 * front-ends keep serving on the two survivors.
 *
 * @module
 */

import { startNatsCluster } from "../../test/helpers/nats.ts";
import {
  type Check,
  FrontEnds,
  type Log,
  PublishProbe,
  type ScenarioResult,
  settle,
  streamSpecs,
  until,
} from "./harness.ts";
import { SequenceStream, totalsOf } from "./streams.ts";

export interface NatsNodeKillOptions {
  messages: number;
  window?: number;
  log?: Log;
}

const PREFIX = "natsnode";

/** The server name leading a stream, asked of a member's monitoring port. */
async function streamLeader(monitorUrl: string, stream: string): Promise<string | undefined> {
  const response = await fetch(`${monitorUrl}/jsz?streams=true`);
  const jsz = await response.json() as {
    account_details?: { stream_detail?: { name: string; cluster?: { leader?: string } }[] }[];
  };
  for (const account of jsz.account_details ?? []) {
    for (const detail of account.stream_detail ?? []) {
      if (detail.name === stream) return detail.cluster?.leader;
    }
  }
  return undefined;
}

export async function natsNodeKill(options: NatsNodeKillOptions): Promise<ScenarioResult> {
  const log = options.log ?? (() => {});
  const specs = streamSpecs(PREFIX, options.messages, options.window ?? 4);
  await using nats = await startNatsCluster(3);
  const cluster = new FrontEnds();
  const streams: SequenceStream[] = [];
  try {
    const frontEnds = await cluster.start(2, {
      natsUrl: nats.urls[0],
      natsUrls: nats.urls,
      prefix: PREFIX,
      backbone: { replicas: 3, leaseTimeout: "5s", ackWait: "3s", timeout: "5s" },
    });
    const lb = await cluster.balance();
    const servers = [{ host: "127.0.0.1", port: lb.port }];
    for (const spec of specs) {
      streams.push(await SequenceStream.open(spec, { publisher: servers, subscriber: servers }));
    }
    const leaderName = await streamLeader(nats.servers[0].monitorUrl, `${PREFIX}-msgs`);
    const victim = nats.servers.find((server) => server.name === leaderName) ?? nats.servers[0];
    const half = Math.floor(options.messages / 2);
    await Promise.all(streams.map((stream) => stream.publish(half)));
    const rest = Promise.all(streams.map((stream) => stream.publish()));
    await victim.kill();
    log(`NATS node ${victim.name} (leader of the messages stream) killed`);
    await rest;
    log("publishers done; waiting for every acknowledged message");
    await settle(streams, frontEnds, log);
    // Each front-end still takes a new client and stores its message, on two NATS nodes.
    let attempt = 0;
    const serving = await until(
      async () => {
        for (const frontEnd of frontEnds) {
          const probe = await PublishProbe.open(frontEnd.port, 5, `${PREFIX}-probe-${attempt++}`);
          try {
            const outcome = await probe.publish("chaos/natsnode/probe", 5000);
            if (outcome.kind !== "puback" || outcome.code >= 0x80) return false;
          } finally {
            await probe.close();
          }
        }
        return true;
      },
      "front-ends serving on two NATS nodes",
      30_000,
      200,
    ).then(() => true, () => false);
    const checks: Check[] = [
      {
        name: "front-ends serve on the two surviving NATS nodes",
        ok: serving && frontEnds.every((frontEnd) => !frontEnd.exited),
        detail: `killed ${victim.name}`,
      },
    ];
    const reports = streams.map((stream) => stream.report());
    return {
      scenario: "NATS cluster node SIGKILL (replicas 3)",
      streams: reports,
      totals: totalsOf(reports),
      checks,
    };
  } finally {
    await Promise.all(streams.map((stream) => stream.close()));
    await cluster.close();
  }
}
