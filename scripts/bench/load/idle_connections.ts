/**
 * Subprocess entry: holds a share of the connection scenario's idle MQTT connections. A separate process
 * per share keeps each under its own open-file limit. Argument: a JSON {@link IdleJob}. Line protocol:
 * prints `ready`; on `connect N` opens the next N of its connections (CONNECT/CONNACK, keep-alive 0;
 * plain `connect`: all the rest) and prints `connected <json>`; on `close` closes them and exits.
 *
 * @module
 */

import { connectMqtt } from "../mqtt_client.ts";

/** One process's share of connections. */
export interface IdleJob {
  /** Broker addresses, used round robin (spreads clients over the ephemeral port range). */
  hosts: string[];
  /** Broker port. */
  port: number;
  /** Connections to open. */
  count: number;
  /** Client ids are `idle-<firstId + i>`. */
  firstId: number;
  /** Connection attempts in progress at once. */
  concurrency: number;
}

/** What `connected` reports. */
export interface IdleReport {
  /** Connections that got a CONNACK. */
  connected: number;
  /** Connections that failed. */
  failed: number;
  /** The first failure, if any. */
  firstError?: string;
}

/** Opens connections `from` up to (not including) `to` of the job. */
async function open(
  job: IdleJob,
  conns: Deno.Conn[],
  from: number,
  to: number,
): Promise<IdleReport> {
  const report: IdleReport = { connected: 0, failed: 0 };
  let next = from;
  const worker = async () => {
    while (next < to) {
      const i = next++;
      try {
        const client = await connectMqtt({
          hostname: job.hosts[i % job.hosts.length],
          port: job.port,
          clientId: `idle-${job.firstId + i}`,
          readBufferSize: 64,
        });
        conns.push(client.conn);
        report.connected++;
      } catch (error) {
        report.failed++;
        report.firstError ??= error instanceof Error ? error.message : String(error);
      }
    }
  };
  await Promise.all(Array.from({ length: job.concurrency }, worker));
  return report;
}

async function main(): Promise<void> {
  const job: IdleJob = JSON.parse(Deno.args[0]);
  const conns: Deno.Conn[] = [];
  let opened = 0;
  console.log("ready");
  let pending = "";
  for await (const text of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    const lines = (pending + text).split("\n");
    pending = lines.pop() ?? "";
    for (const line of lines) {
      const connect = line.match(/^connect(?: (\d+))?$/);
      if (connect) {
        const to = Math.min(job.count, opened + Number(connect[1] ?? job.count));
        const report = await open(job, conns, opened, to);
        opened = to;
        console.log(`connected ${JSON.stringify(report)}`);
      } else if (line === "close") {
        for (const conn of conns) conn.close();
        return;
      }
    }
  }
}

if (import.meta.main) await main();
