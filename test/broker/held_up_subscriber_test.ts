/**
 * A subscriber process that does not run for a while (a busy machine that keeps it off its CPU, a
 * long collection pause) must not be taken for a stuck subscriber: while it is held up its queue
 * fills and publishes wait for room, and refusing them then would drop messages that a 3.1.1
 * publisher is told were delivered (it has no code to hear a refusal with). The subscriber is
 * `mosquitto_sub` in a process of its own, stopped (SIGSTOP) for 1.5 s while a 3.1.1 publisher
 * keeps its window full; every message the publisher was acknowledged for must reach it, once and
 * in order. Run on Deno and on Bun, at QoS 1 and QoS 2. Checked by counts, never by timings: the
 * stop is the fault itself, not a wait for anything.
 *
 * @module
 */

import assert from "node:assert/strict";
import { PacketType } from "../../src/codec/mod.ts";
import type { QoS } from "../../src/codec/packets.ts";
import { type BrokerProcess, runtimeTest, startBrokerProcess } from "../helpers/broker_process.ts";
import { TestClient } from "../helpers/test_client.ts";

/** How long the subscriber is stopped: more than the second the broker used to allow it. */
const HELD_UP_MS = 1_500;
/** Messages published in all. */
const TOTAL = 400;
/** The publisher's window: messages sent and not yet acknowledged (completed, for QoS 2). */
const WINDOW = 16;
/** The subscriber is stopped once this many messages reached it. */
const STOP_AFTER = 50;
/** Longest wait for the subscriber's next line (a guard against a hang, never a delay). */
const LINE_WAIT_MS = 20_000;

const encoder = new TextEncoder();

/** `mosquitto_sub` as a child process, its output read line by line. */
class SubscriberProcess {
  readonly received: string[] = [];
  readonly #child: Deno.ChildProcess;
  readonly #lines: string[] = [];
  #wake: (() => void) | undefined;
  #ended = false;
  readonly #reading: Promise<void>;

  constructor(port: number, qos: QoS) {
    // Line-buffered output (stdbuf), or the lines would wait in stdio's buffer. -d prints the
    // SUBACK; the payloads are printed alone on their lines. 3.1.1, a persistent session.
    this.#child = new Deno.Command("stdbuf", {
      args: ["-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", String(port), "-V", "mqttv311"]
        .concat(["-i", "held-sub", "-c", "-q", String(qos), "-t", "w", "-d"]),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#reading = this.#read();
  }

  async #read(): Promise<void> {
    let pending = "";
    try {
      for await (const text of this.#child.stdout.pipeThrough(new TextDecoderStream())) {
        const lines = (pending + text).split("\n");
        pending = lines.pop() ?? "";
        for (const line of lines) {
          this.#lines.push(line);
          if (/^m\d+$/.test(line) || line === "end") this.received.push(line);
        }
        this.#wake?.();
      }
    } finally {
      this.#ended = true;
      this.#wake?.();
    }
  }

  /** Resolves once `done()` holds; fails when the process ends or prints nothing for a while. */
  async until(done: () => boolean, what: string): Promise<void> {
    while (!done()) {
      if (this.#ended) throw new Error(`mosquitto_sub ended before ${what}: ${this.#lines}`);
      const { promise, resolve } = Promise.withResolvers<void>();
      this.#wake = resolve;
      const timer = setTimeout(resolve, LINE_WAIT_MS);
      const before = this.#lines.length;
      await promise;
      clearTimeout(timer);
      if (this.#lines.length === before && !this.#ended && !done()) {
        throw new Error(`mosquitto_sub printed nothing for ${LINE_WAIT_MS} ms before ${what}`);
      }
    }
  }

  subscribed(): Promise<void> {
    return this.until(() => this.#lines.some((line) => line.includes("SUBACK")), "its SUBACK");
  }

  signal(signal: Deno.Signal): void {
    try {
      this.#child.kill(signal);
    } catch {
      // Already exited.
    }
  }

  async stop(): Promise<void> {
    this.signal("SIGCONT");
    this.signal("SIGTERM");
    await this.#child.status;
    await this.#reading.catch(() => {});
    await this.#child.stderr.cancel().catch(() => {});
  }
}

/**
 * Publishes `total` messages at `qos` from a 3.1.1 client, keeping `WINDOW` unacknowledged, and
 * calls `progress` after each acknowledgement; resolves once every one was acknowledged.
 */
async function publishAll(
  pub: TestClient,
  qos: 1 | 2,
  total: number,
  progress: () => void,
): Promise<void> {
  let sent = 0;
  let done = 0;
  const publish = async () => {
    const id = sent++;
    await pub.send({
      type: PacketType.PUBLISH,
      dup: false,
      qos,
      retain: false,
      topic: "w",
      packetId: (id % 60_000) + 1,
      properties: undefined,
      payload: encoder.encode(`m${id}`),
    });
  };
  while (sent < Math.min(WINDOW, total)) await publish();
  while (done < total) {
    const packet = await pub.next(LINE_WAIT_MS);
    if (!packet) {
      throw new Error(`the publisher lost its connection after ${done} acknowledgements`);
    }
    if (packet.type === PacketType.PUBREC) {
      assert.ok(packet.reasonCode < 0x80);
      await pub.send({
        type: PacketType.PUBREL,
        packetId: packet.packetId,
        reasonCode: 0,
        properties: undefined,
      });
      continue;
    }
    assert.equal(packet.type, qos === 1 ? PacketType.PUBACK : PacketType.PUBCOMP);
    done++;
    progress();
    if (sent < total) await publish();
  }
}

for (const qos of [1, 2] as const) {
  runtimeTest(
    `a subscriber process held up for 1.5 s loses none of the QoS ${qos} messages a 3.1.1 publisher was acknowledged for`,
    async (runtime) => {
      const broker: BrokerProcess = await startBrokerProcess(runtime, {
        env: { PERCH_MQTT__MAXINFLIGHT: "4", PERCH_MQTT__MAXQUEUEDMESSAGES: "10" },
      });
      let sub: SubscriberProcess | undefined;
      let pub: TestClient | undefined;
      try {
        const { tcp: port } = await broker.started();
        sub = new SubscriberProcess(port!, qos);
        await sub.subscribed();
        ({ client: pub } = await TestClient.connect(port!, { clientId: "held-pub", version: 4 }));
        const subscriber = sub;
        let stopped = false;
        let held: Promise<void> = Promise.resolve();
        await publishAll(pub, qos, TOTAL, () => {
          // Stop the subscriber once messages flow; the publisher carries on, so the queue fills
          // and its publishes wait for room while the subscriber does not run.
          if (stopped || subscriber.received.length < STOP_AFTER) return;
          stopped = true;
          subscriber.signal("SIGSTOP");
          held = new Promise<void>((resolve) =>
            setTimeout(() => {
              subscriber.signal("SIGCONT");
              resolve();
            }, HELD_UP_MS)
          );
        });
        await held;
        assert.ok(stopped, "the subscriber was stopped while messages flowed");
        // Published after every acknowledgement: it arrives after everything that was stored (at
        // the same QoS: mosquitto_sub prints a QoS 2 message only once PUBREL came).
        await pub.publish("w", "end", { qos });
        await sub.until(() => sub!.received.includes("end"), "the last message");
        const expected = Array.from({ length: TOTAL }, (_, i) => `m${i}`).concat("end");
        const missing = expected.filter((line) => !sub!.received.includes(line));
        assert.deepEqual(missing, [], `${missing.length} acknowledged messages never arrived`);
        assert.deepEqual(sub.received, expected, "each once, in order");
      } finally {
        await pub?.destroy().catch(() => {});
        await sub?.stop();
        await broker.stop();
      }
    },
  );
}
