/**
 * The composition root as a process: `src/main.ts` started with environment settings, its admin
 * API and MQTT listener reached over real sockets, then stopped with SIGTERM.
 *
 * @module
 */

import assert from "node:assert/strict";
import { PacketType, ReasonCode } from "../src/codec/mod.ts";
import { TestClient } from "./helpers/test_client.ts";

const TOKEN = "main-test-token-0123456789";
/** Longest wait for the process to log a line (a guard, never a delay). */
const WAIT_MS = 30_000;

interface Running {
  /** Parsed JSON log lines so far. */
  logs: Record<string, unknown>[];
  /** Resolves with the first log line whose message matches. */
  line(message: string): Promise<Record<string, unknown>>;
  /** Sends SIGTERM and resolves with the exit status. */
  stop(): Promise<Deno.CommandStatus>;
  /** Resolves with the exit status once the process ends by itself. */
  exited(): Promise<Deno.CommandStatus>;
}

function start(env: Record<string, string>): Running {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../src/main.ts", import.meta.url).pathname],
    env: {
      PERCH_LOG__FORMAT: "json",
      PERCH_LISTENERS__TCP__HOST: "127.0.0.1",
      PERCH_LISTENERS__TCP__PORT: "0",
      PERCH_ADMIN__PORT: "0",
      PERCH_SYS__ENABLED: "false",
      ...env,
    },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const logs: Record<string, unknown>[] = [];
  const waiters: { message: string; resolve: (line: Record<string, unknown>) => void }[] = [];
  const read = async (stream: ReadableStream<Uint8Array>) => {
    let pending = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      pending += chunk;
      let end;
      while ((end = pending.indexOf("\n")) !== -1) {
        const text = pending.slice(0, end);
        pending = pending.slice(end + 1);
        let entry: Record<string, unknown>;
        try {
          entry = JSON.parse(text);
        } catch {
          entry = { msg: text };
        }
        logs.push(entry);
        for (const waiter of [...waiters]) {
          if (entry.msg === waiter.message) {
            waiters.splice(waiters.indexOf(waiter), 1);
            waiter.resolve(entry);
          }
        }
      }
    }
  };
  const drained = Promise.all([read(child.stdout), read(child.stderr)]);
  return {
    logs,
    line(message) {
      const found = logs.find((entry) => entry.msg === message);
      if (found) return Promise.resolve(found);
      const { promise, resolve, reject } = Promise.withResolvers<Record<string, unknown>>();
      const timer = setTimeout(
        () => reject(new Error(`No "${message}" log line; got ${JSON.stringify(logs)}`)),
        WAIT_MS,
      );
      waiters.push({ message, resolve: (line) => (clearTimeout(timer), resolve(line)) });
      return promise;
    },
    async exited() {
      const status = await child.status;
      await drained;
      return status;
    },
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already exited.
      }
      const status = await child.status;
      await drained;
      return status;
    },
  };
}

function portOf(line: Record<string, unknown>): number {
  return Number(String(line.address).split(":").pop());
}

Deno.test("main serves the admin API with configured tokens next to MQTT, and stops on SIGTERM", async () => {
  const broker = start({
    PERCH_ADMIN__HOST: "127.0.0.1",
    PERCH_ADMIN__TOKENS: JSON.stringify([{ token: TOKEN, role: "admin" }]),
  });
  try {
    const admin = `http://127.0.0.1:${portOf(await broker.line("admin API started"))}`;
    const mqttPort = portOf(await broker.line("listener started"));
    await broker.line("broker started");
    const ready = await fetch(`${admin}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), {
      status: "ready",
      checks: { listeners: true, backbone: true },
    });
    const denied = await fetch(`${admin}/api/v1/clients`);
    assert.equal(denied.status, 401);
    await denied.body?.cancel();
    const { client } = await TestClient.connect(mqttPort, { clientId: "proc", version: 5 });
    const kick = await fetch(`${admin}/api/v1/clients/proc`, {
      method: "DELETE",
      headers: { "x-token": TOKEN },
    });
    assert.equal(kick.status, 204);
    assert.equal(
      (await client.expect(PacketType.DISCONNECT)).reasonCode,
      ReasonCode.AdministrativeAction,
    );
    await client.closed;
  } finally {
    const status = await broker.stop();
    assert.equal(status.code, 0);
  }
  assert.ok(broker.logs.some((entry) => entry.msg === "broker stopped"));
});

Deno.test("main binds an admin API without credentials to loopback only, and says so", async () => {
  const broker = start({ PERCH_ADMIN__HOST: "0.0.0.0" });
  try {
    const warning = await broker.line(
      "admin API has no credentials configured: listening on loopback only (set admin.tokens or admin.users to serve other machines)",
    );
    assert.equal(warning.level, "warn");
    assert.equal(warning.configured, "0.0.0.0");
    const started = await broker.line("admin API started");
    assert.match(String(started.address), /^127\.0\.0\.1:\d+$/);
    const stats = await fetch(`http://127.0.0.1:${portOf(started)}/api/v1/stats`);
    assert.equal(stats.status, 200);
    await stats.body?.cancel();
  } finally {
    assert.equal((await broker.stop()).code, 0);
  }
});

Deno.test("main refuses to start with an API user whose verifier does not parse", async () => {
  const verifier = "SCRAM-SHA-256$1:c2FsdA==$" + "A".repeat(43) + "=:" + "B".repeat(43) + "=";
  const broker = start({
    PERCH_ADMIN__USERS: JSON.stringify([{ username: "ops", password: verifier, role: "admin" }]),
  });
  const failed = await broker.line("cannot start the admin API");
  assert.match(JSON.stringify(failed), /iterations must be from 4096/);
  assert.equal((await broker.exited()).code, 1);
});
