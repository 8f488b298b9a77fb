/**
 * Interoperability with Eclipse Mosquitto's command-line clients (`mosquitto_pub`,
 * `mosquitto_sub`; Debian package mosquitto-clients) over real TCP sockets, against an in-process
 * broker, with MQTT 3.1.1 (`-V mqttv311`) and MQTT 5 (`-V mqttv5`). The delivery and retained
 * scenarios run again against the broker as a process on Deno and on Bun, and through haproxy
 * against three front-ends on NATS (`../helpers/interop_targets.ts`).
 *
 * Synchronisation is event-driven: a subscriber process is started, the test waits for the
 * broker's `onSubscribe` hook to report its client id (in a cluster: for its session to show the
 * subscription), then publishes. Every process has a kill
 * timer as a failure guard. Missing binaries fail the tests with the install command.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { ClientInfo } from "../../src/hooks/hooks.ts";
import { startBroker, type TestBroker } from "../helpers/broker.ts";
import {
  inProcess,
  type InteropBroker,
  ON_RUNTIMES,
  throughHaproxy,
} from "../helpers/interop_targets.ts";

/** Longest a process may run before it is killed and the test fails (a guard, never a delay). */
const WAIT_MS = 10_000;

const VERSIONS = ["mqttv311", "mqttv5"] as const;
type Version = typeof VERSIONS[number];

/** The spec tags of a behaviour: MQTT 3.1.1 and MQTT 5 number their statements differently. */
function tags(version: Version, v311: string, v5: string): string {
  return version === "mqttv311" ? v311 : v5;
}

const decoder = new TextDecoder();

/** Fails (never skips) when the clients are not installed, naming the package to install. */
async function requireMosquittoClients(): Promise<void> {
  for (const program of ["mosquitto_sub", "mosquitto_pub"]) {
    try {
      await new Deno.Command(program, { args: ["--help"], stdout: "null", stderr: "null" })
        .output();
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        throw new Error(
          `Cannot run ${program}: it is not installed; run \`apt-get install -y mosquitto-clients\``,
        );
      }
      throw err;
    }
  }
}

/** What a finished process printed. */
interface Finished {
  code: number;
  stdout: string;
  stderr: string;
}

/** A running client process; `finished` resolves when it exits (or is killed by its guard). */
interface Running {
  finished: Promise<Finished>;
  kill(): void;
}

/** Starts a program with a kill timer as a guard against hanging. */
function start(program: string, args: string[]): Running {
  const child = new Deno.Command(program, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let exited = false;
  const kill = () => {
    if (exited) return;
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  };
  const guard = setTimeout(kill, WAIT_MS);
  const finished = child.output().then((out) => ({
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  })).finally(() => {
    exited = true;
    clearTimeout(guard);
  });
  return { finished, kill };
}

/** The connection options every process gets. */
function common(server: { port: number }, version: Version, clientId: string): string[] {
  return ["-h", "127.0.0.1", "-p", String(server.port), "-V", version, "-i", clientId];
}

/** Runs `mosquitto_pub` to completion and requires success. */
async function pub(
  server: { port: number },
  version: Version,
  clientId: string,
  args: string[],
): Promise<void> {
  const result = await start("mosquitto_pub", [...common(server, version, clientId), ...args])
    .finished;
  assert.equal(result.code, 0, `mosquitto_pub ${args.join(" ")} failed: ${result.stderr}`);
}

/** Records what the broker's hooks report, so tests can wait for a client's subscription. */
class Watch {
  connected: string[] = [];
  #subscribed = new Set<string>();
  #waiters = new Map<string, (() => void)[]>();

  onConnect = (client: ClientInfo) => {
    this.connected.push(client.clientId);
  };

  onSubscribe = (client: ClientInfo) => {
    this.#subscribed.add(client.clientId);
    for (const wake of this.#waiters.get(client.clientId) ?? []) wake();
    this.#waiters.delete(client.clientId);
  };

  /** Resolves once `clientId` has subscribed. */
  subscribed(clientId: string): Promise<void> {
    if (this.#subscribed.has(clientId)) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    const list = this.#waiters.get(clientId) ?? [];
    list.push(resolve);
    this.#waiters.set(clientId, list);
    return promise;
  }
}

/** A broker with a {@linkcode Watch} on its hooks, and the same as an interop broker. */
function startWatchedBroker(): {
  server: TestBroker;
  watch: Watch;
  watched: Pick<InteropBroker, "port" | "subscribed">;
} {
  const watch = new Watch();
  const server = startBroker({
    hooks: { onConnect: watch.onConnect, onSubscribe: watch.onSubscribe },
  });
  return {
    server,
    watch,
    watched: { port: server.port, subscribed: (id) => watch.subscribed(id) },
  };
}

/** Starts `mosquitto_sub` and waits until the broker has its subscription. */
async function subscriber(
  server: Pick<InteropBroker, "port" | "subscribed">,
  version: Version,
  clientId: string,
  args: string[],
): Promise<Running> {
  const running = start("mosquitto_sub", [...common(server, version, clientId), ...args]);
  // One that got all it waited for (a retained message) may be gone before its subscription
  // shows in a cluster's API: only a failed exit is a failure.
  const early = running.finished.then((result) => {
    if (result.code === 0) return;
    throw new Error(
      `Subscriber ${clientId} exited (code ${result.code}) before subscribing: ${result.stderr}`,
    );
  });
  try {
    await Promise.race([server.subscribed(clientId), early]);
  } catch (err) {
    running.kill();
    await running.finished;
    throw err;
  }
  return running;
}

/** Waits for a subscriber to exit on its own (after `-C n`) and returns its output lines. */
async function linesOf(running: Running): Promise<string[]> {
  const result = await running.finished;
  assert.equal(result.code, 0, `mosquitto_sub failed (code ${result.code}): ${result.stderr}`);
  return result.stdout.split("\n").filter((line) => line !== "");
}

/** The scenarios below run in this process, as a process on Deno and on Bun, and through a cluster. */
const TARGETS = [inProcess, ...ON_RUNTIMES, throughHaproxy()];

for (const target of TARGETS) {
  for (const version of VERSIONS) {
    for (const qos of [0, 1, 2]) {
      Deno.test(
        `${target.prefix}mosquitto_pub -> mosquitto_sub -V ${version}: a QoS ${qos} message is delivered at QoS ${qos} ${
          tags(version, "[MQTT-3.8.4-6]", "[MQTT-3.8.4-8]")
        }`,
        async () => {
          await requireMosquittoClients();
          const server = await target.start();
          let sub: Running | undefined;
          try {
            sub = await subscriber(server, version, `sub-q${qos}`, [
              ...["-t", "interop/+/q", "-q", "2", "-C", "1"],
              ...["-F", "%q|%r|%t|%p"],
            ]);
            await pub(server, version, `pub-q${qos}`, [
              ...["-t", `interop/${qos}/q`, "-q", String(qos), "-m", `hello at ${qos}`],
            ]);
            assert.deepEqual(await linesOf(sub), [`${qos}|0|interop/${qos}/q|hello at ${qos}`]);
          } finally {
            sub?.kill();
            await sub?.finished;
            await server.close();
          }
        },
      );
    }

    Deno.test(`${target.prefix}mosquitto_sub -V ${version} -C 3 -v prints exactly three messages from a # filter with their topics`, async () => {
      await requireMosquittoClients();
      const server = await target.start();
      let sub: Running | undefined;
      try {
        sub = await subscriber(server, version, "sub-many", [
          ...["-t", "many/#", "-q", "1", "-C", "3", "-v"],
        ]);
        for (const [i, topic] of ["many", "many/a", "many/a/b"].entries()) {
          await pub(server, version, `pub-many-${i}`, ["-t", topic, "-q", "1", "-m", `m${i}`]);
        }
        assert.deepEqual(await linesOf(sub), ["many m0", "many/a m1", "many/a/b m2"]);
      } finally {
        sub?.kill();
        await sub?.finished;
        await server.close();
      }
    });

    Deno.test(
      `${target.prefix}mosquitto_pub -r -V ${version}: a later mosquitto_sub gets the retained message with RETAIN set ${
        tags(version, "[MQTT-3.3.1-6] [MQTT-3.3.1-8]", "[MQTT-3.3.1-5] [MQTT-3.3.1-9]")
      }`,
      async () => {
        await requireMosquittoClients();
        const server = await target.start();
        let sub: Running | undefined;
        try {
          await pub(server, version, "ret-pub", ["-t", "ret/x", "-q", "1", "-r", "-m", "kept"]);
          sub = await subscriber(server, version, "ret-sub", [
            ...["-t", "ret/#", "-q", "1", "-C", "1", "-F", "%r|%t|%p"],
          ]);
          assert.deepEqual(await linesOf(sub), ["1|ret/x|kept"]);
        } finally {
          sub?.kill();
          await sub?.finished;
          await server.close();
        }
      },
    );
  }

  Deno.test(`${target.prefix}mosquitto clients: the brokers stop`, () => target.stop());
}

for (const version of VERSIONS) {
  Deno.test(
    `mosquitto_pub -r -n -V ${version} clears the retained message ${
      tags(version, "[MQTT-3.3.1-10] [MQTT-3.3.1-11]", "[MQTT-3.3.1-6] [MQTT-3.3.1-7]")
    }`,
    async () => {
      await requireMosquittoClients();
      const { server, watched } = startWatchedBroker();
      let sub: Running | undefined;
      try {
        await pub(server, version, "clr-pub1", ["-t", "clr/x", "-q", "1", "-r", "-m", "old"]);
        assert.equal((await server.backbone.retained.match("clr/#")).length, 1);
        await pub(server, version, "clr-pub2", ["-t", "clr/x", "-q", "1", "-r", "-n"]);
        assert.equal((await server.backbone.retained.match("clr/#")).length, 0);
        // A new subscriber's first message is the live marker, not the old retained one.
        sub = await subscriber(watched, version, "clr-sub", [
          ...["-t", "clr/#", "-q", "1", "-C", "1", "-F", "%r|%t|%p"],
        ]);
        await pub(server, version, "clr-pub3", ["-t", "clr/x", "-q", "1", "-m", "marker"]);
        assert.deepEqual(await linesOf(sub), ["0|clr/x|marker"]);
      } finally {
        sub?.kill();
        await sub?.finished;
        await server.close();
      }
    },
  );

  Deno.test(`mosquitto -i -V ${version}: the given client ids are the broker's client ids [MQTT-3.1.3-2]`, async () => {
    await requireMosquittoClients();
    const { server, watch, watched } = startWatchedBroker();
    let sub: Running | undefined;
    try {
      sub = await subscriber(watched, version, "given-sub-id", [
        ...["-t", "ids/t", "-C", "1", "-F", "%p"],
      ]);
      assert.equal((await server.broker.getSession("given-sub-id"))?.connected, true);
      await pub(server, version, "given-pub-id", ["-t", "ids/t", "-m", "x"]);
      assert.deepEqual(await linesOf(sub), ["x"]);
      assert.deepEqual(watch.connected.sort(), ["given-pub-id", "given-sub-id"]);
    } finally {
      sub?.kill();
      await sub?.finished;
      await server.close();
    }
  });

  Deno.test(
    `mosquitto_sub -c -q 1 -V ${version} receives a message published while it was offline ${
      tags(version, "[MQTT-3.1.2-5]", "[MQTT-3.1.2-23]")
    }`,
    async () => {
      await requireMosquittoClients();
      const { server } = startWatchedBroker();
      let sub: Running | undefined;
      try {
        // Subscribe in a persistent session, then exit once the SUBACK is in (-E).
        const first = await start("mosquitto_sub", [
          ...common(server, version, "persist-sub"),
          ...["-c", "-q", "1", "-t", "persist/t", "-E"],
        ]).finished;
        assert.equal(first.code, 0, `first mosquitto_sub failed: ${first.stderr}`);
        const session = await server.broker.getSession("persist-sub");
        assert.ok(session, "no session kept for persist-sub");
        assert.equal(session.connected, false);

        await pub(server, version, "persist-pub", [
          "-t",
          "persist/t",
          "-q",
          "1",
          "-m",
          "while away",
        ]);
        assert.equal((await server.broker.getSession("persist-sub"))?.queued, 1);

        // Back with the same id and -c: the queued message arrives without a new SUBSCRIBE.
        sub = start("mosquitto_sub", [
          ...common(server, version, "persist-sub"),
          ...["-c", "-q", "1", "-t", "persist/t", "-C", "1", "-F", "%q|%t|%p"],
        ]);
        assert.deepEqual(await linesOf(sub), ["1|persist/t|while away"]);
      } finally {
        sub?.kill();
        await sub?.finished;
        await server.close();
      }
    },
  );
}

Deno.test("mosquitto_pub -D -> mosquitto_sub -V mqttv5: content type, response topic, correlation data and user properties are forwarded; the subscription identifier is added [MQTT-3.3.2-15] [MQTT-3.3.2-16] [MQTT-3.3.2-17] [MQTT-3.3.2-20] [MQTT-3.3.4-3]", async () => {
  await requireMosquittoClients();
  const { server, watched } = startWatchedBroker();
  let sub: Running | undefined;
  try {
    sub = await subscriber(watched, "mqttv5", "props-sub", [
      ...["-t", "props/t", "-q", "1", "-C", "1"],
      ...["-D", "subscribe", "subscription-identifier", "9"],
      ...["-F", "%C|%R|%D|%P|%S|%p"],
    ]);
    await pub(server, "mqttv5", "props-pub", [
      ...["-t", "props/t", "-q", "1", "-m", "body"],
      ...["-D", "publish", "content-type", "text/plain"],
      ...["-D", "publish", "response-topic", "reply/here"],
      ...["-D", "publish", "correlation-data", "corr-42"],
      ...["-D", "publish", "user-property", "k1", "v1"],
    ]);
    assert.deepEqual(await linesOf(sub), ["text/plain|reply/here|corr-42|k1:v1|9|body"]);
  } finally {
    sub?.kill();
    await sub?.finished;
    await server.close();
  }
});
