/**
 * The composition root as a process: `src/main.ts` started on Deno and on Bun with environment
 * settings, its admin API and MQTT listeners reached over real sockets, then stopped with SIGTERM.
 *
 * @module
 */

import assert from "node:assert/strict";
import { deriveScramCredentials, formatScramCredentials } from "../src/auth/credentials.ts";
import { PacketType, ReasonCode } from "../src/codec/mod.ts";
import {
  portOf,
  runBroker,
  runtimeTest,
  startBrokerProcess,
  startTaskFlags,
} from "./helpers/broker_process.ts";
import { makeCerts } from "./helpers/certs.ts";
import { RawWebSocket } from "./helpers/raw_websocket.ts";
import { TestClient } from "./helpers/test_client.ts";

const TOKEN = "main-test-token-0123456789";

runtimeTest(
  "main serves the admin API with configured tokens next to MQTT, and stops on SIGTERM",
  async (runtime) => {
    const broker = await startBrokerProcess(runtime, {
      env: { PERCH_ADMIN__TOKENS: JSON.stringify([{ token: TOKEN, role: "admin" }]) },
    });
    try {
      const admin = `http://127.0.0.1:${portOf(await broker.line("admin API started"))}`;
      const mqttPort = portOf(await broker.line("listener started"));
      const started = await broker.line("broker started");
      assert.match(String(started.runtime), new RegExp(`^${runtime} \\d+\\.\\d+`));
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
  },
);

runtimeTest(
  "the admin API publishes, lists, counts and exposes metrics, and takes MQTT over WebSocket on its port",
  async (runtime) => {
    const broker = await startBrokerProcess(runtime, {
      env: {
        PERCH_ADMIN__TOKENS: JSON.stringify([{ token: TOKEN, role: "admin" }]),
        PERCH_ADMIN__WEB_SOCKET: "true",
      },
    });
    try {
      const { admin } = await broker.started();
      const api = (path: string, init: RequestInit = {}) =>
        fetch(`http://127.0.0.1:${admin}${path}`, {
          ...init,
          headers: { "x-token": TOKEN, "content-type": "application/json" },
        });
      const published = await api("/api/v1/publish", {
        method: "POST",
        body: JSON.stringify({ topic: "api/kept", payload: "from the API", qos: 1, retain: true }),
      });
      assert.equal(published.status, 200);
      assert.equal((await published.json()).reasonCode, ReasonCode.NoMatchingSubscribers);
      const retained = await (await api("/api/v1/retained")).json();
      assert.deepEqual(retained.data.map((m: { topic: string }) => m.topic), ["api/kept"]);

      const { socket, response } = await RawWebSocket.connect(admin!, { protocols: ["mqtt"] });
      assert.equal(response.status, 101);
      const overWs = TestClient.wrap(socket!, 5);
      assert.equal((await overWs.sendConnect({ clientId: "on-admin-port" })).reasonCode, 0);
      await overWs.subscribe("api/#", 1);
      const message = await overWs.expect(PacketType.PUBLISH);
      assert.deepEqual([message.topic, message.retain], ["api/kept", true]);
      await overWs.ack(message);

      const client = await (await api("/api/v1/clients/on-admin-port")).json();
      assert.deepEqual([client.transport, client.subscriptions], ["ws", 1]);
      const sessions = await (await api("/api/v1/sessions")).json();
      assert.deepEqual(sessions.data.map((s: { clientId: string }) => s.clientId), [
        "on-admin-port",
      ]);
      const stats = await (await api("/api/v1/stats")).json();
      assert.deepEqual([stats.connections.connected, stats.retained], [1, 1]);
      const nodes = await (await api("/api/v1/nodes")).json();
      assert.ok(nodes[0].listeners.some((l: { transport: string }) => l.transport === "tcp"));
      const metrics = await (await api("/metrics")).text();
      assert.match(metrics, /^perch_clients_connected\{protocol_version="5",[^}]*\} 1$/m);
      const rss = /^process_resident_memory_bytes\{[^}]*\} (\S+)$/m.exec(metrics);
      assert.ok(rss && Number(rss[1]) > 0, "no resident memory in /metrics");
      const openapi = await api("/api/v1/openapi.json");
      assert.equal((await openapi.json()).openapi, "3.1.0");
      await overWs.disconnect();
    } finally {
      assert.equal((await broker.stop()).code, 0);
    }
  },
);

runtimeTest(
  "main binds an admin API without credentials to loopback only, and says so",
  async (runtime) => {
    const broker = await startBrokerProcess(runtime, { env: { PERCH_ADMIN__HOST: "0.0.0.0" } });
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
  },
);

runtimeTest(
  "main refuses to start with an API user whose verifier does not parse",
  async (runtime) => {
    const verifier = "SCRAM-SHA-256$1:c2FsdA==$" + "A".repeat(43) + "=:" + "B".repeat(43) + "=";
    const broker = await startBrokerProcess(runtime, {
      env: {
        PERCH_ADMIN__USERS: JSON.stringify([{
          username: "ops",
          password: verifier,
          role: "admin",
        }]),
      },
    });
    const failed = await broker.line("cannot start the admin API");
    assert.match(JSON.stringify(failed), /iterations must be from 4096/);
    assert.equal((await broker.exited()).code, 1);
  },
);

/** A temp dir with an empty password file, a rules file and a config file naming them. */
async function securityFiles(): Promise<
  { dir: string; env: Record<string, string>; args: string[] }
> {
  const dir = await Deno.makeTempDir({ prefix: "perch_main_test_" });
  await Deno.writeTextFile(`${dir}/users`, "");
  await Deno.writeTextFile(`${dir}/acl.yaml`, "{ default: deny, rules: [] }\n");
  await Deno.writeTextFile(
    `${dir}/perch.yaml`,
    [
      `auth: { chain: [passwordFile], passwordFile: { path: ${dir}/users } }`,
      `acl: { default: allow, file: ${dir}/acl.yaml }`,
    ].join("\n"),
  );
  return {
    dir,
    args: ["-c", `${dir}/perch.yaml`],
    env: {
      PERCH_ADMIN__TOKENS: JSON.stringify([{ token: TOKEN, role: "admin", name: "ops-cli" }]),
    },
  };
}

runtimeTest(
  "the start task (deno task start, bun run start) lets the admin API write users and ACL rules; the ACL default and its source are logged",
  async (runtime) => {
    const { dir, env, args } = await securityFiles();
    const broker = await startBrokerProcess(runtime, { env, args, startTask: true });
    try {
      const admin = `http://127.0.0.1:${portOf(await broker.line("admin API started"))}`;
      const aclDefault = await broker.line(
        'ACL default "deny" of acl.file overrides acl.default "allow"',
      );
      assert.deepEqual([aclDefault.level, aclDefault.default, aclDefault.source], [
        "warn",
        "deny",
        "acl.file",
      ]);
      const headers = { "x-token": TOKEN, "content-type": "application/json" };
      const user = await fetch(`${admin}/api/v1/users`, {
        method: "POST",
        headers,
        body: JSON.stringify({ username: "dev1", password: "s3cret" }),
      });
      assert.equal(user.status, 201);
      await user.body?.cancel();
      const rule = await fetch(`${admin}/api/v1/acl/rules`, {
        method: "POST",
        headers,
        body: JSON.stringify({ permission: "allow", action: "both", topic: "devices/%u/#" }),
      });
      assert.equal(rule.status, 201);
      await rule.body?.cancel();
      assert.match(await Deno.readTextFile(`${dir}/users`), /^dev1:SCRAM-SHA-256\$/m);
      assert.match(await Deno.readTextFile(`${dir}/acl.yaml`), /devices\/%u\/#/);
      const audit = await broker.line("admin audit");
      assert.deepEqual([audit.method, audit.path, audit.principal], [
        "POST",
        "/api/v1/users",
        "ops-cli",
      ]);
    } finally {
      assert.equal((await broker.stop()).code, 0);
      await Deno.remove(dir, { recursive: true });
    }
  },
);

runtimeTest(
  "main refuses to start when Deno may not write a file the admin API saves, naming the key",
  async (runtime) => {
    const { dir, env, args } = await securityFiles();
    const other = await Deno.makeTempDir();
    try {
      const flags = (await startTaskFlags()).map((flag) =>
        flag === "--allow-write" ? `--allow-write=${other}` : flag
      );
      const broker = await startBrokerProcess(runtime, { env, args, denoFlags: flags });
      assert.equal((await broker.exited()).code, 1);
      const problems = broker.logs.filter((l) => String(l.msg).startsWith("cannot start:"));
      assert.deepEqual(problems.map((l) => l.key), ["auth.passwordFile.path", "acl.file"]);
      assert.match(
        String(problems[0].msg),
        /^cannot start: auth\.passwordFile\.path: .*\/users: not writable: Deno has no write permission for /,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
      await Deno.remove(other);
    }
  },
  ["deno"],
); // Bun has no permissions to withhold.

runtimeTest(
  "SIGHUP re-reads the password file, and a change of the watched file is picked up by itself",
  async (runtime) => {
    const { dir, env, args } = await securityFiles();
    const broker = await startBrokerProcess(runtime, { env, args });
    try {
      const { tcp } = await broker.started();
      broker.signal("SIGHUP");
      assert.equal((await broker.line("security configuration reloaded")).users, 0);
      const refused = await TestClient.connect(tcp!, { username: "dev1", password: "s3cret" });
      assert.notEqual(refused.connack.reasonCode, 0);
      // An operator edits the file: the broker watches its folder and reloads it.
      const credentials = await deriveScramCredentials("s3cret", { iterations: 4096 });
      await Deno.writeTextFile(`${dir}/users`, `dev1:${formatScramCredentials(credentials)}\n`);
      await broker.line("reloaded after a file change", { file: `${dir}/users` });
      const { client, connack } = await TestClient.connect(tcp!, {
        username: "dev1",
        password: "s3cret",
      });
      assert.equal(connack.reasonCode, 0);
      await client.disconnect();
    } finally {
      assert.equal((await broker.stop()).code, 0);
      await Deno.remove(dir, { recursive: true });
    }
  },
);

/** Makes a folder read-only for this process: chattr +i as root (who ignores modes), else chmod. */
async function makeReadOnly(dir: string): Promise<() => Promise<void>> {
  if (Deno.uid() !== 0) {
    await Deno.chmod(dir, 0o555);
    return () => Deno.chmod(dir, 0o755);
  }
  const chattr = (flag: string) => new Deno.Command("chattr", { args: [flag, dir] }).output();
  const { success, stderr } = await chattr("+i");
  if (!success) throw new Error(`chattr +i failed: ${new TextDecoder().decode(stderr)}`);
  return async () => void await chattr("-i");
}

runtimeTest(
  "main refuses to start when the folder of a file the admin API saves is read-only, naming the key",
  async (runtime) => {
    const { dir, env, args } = await securityFiles();
    const restore = await makeReadOnly(dir);
    try {
      const broker = await startBrokerProcess(runtime, { env, args });
      assert.equal((await broker.exited()).code, 1);
      const problems = broker.logs.filter((l) => String(l.msg).startsWith("cannot start:"));
      assert.deepEqual(problems.map((l) => l.key), ["auth.passwordFile.path", "acl.file"]);
      assert.match(
        String(problems[1].msg),
        /acl\.file: .*acl\.yaml: not writable: cannot create a file in /,
      );
    } finally {
      await restore();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

runtimeTest("main names the listener, address and key when a port is taken", async (runtime) => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = (taken.addr as Deno.NetAddr).port;
    const broker = await startBrokerProcess(runtime, {
      env: { PERCH_LISTENERS__TCP__PORT: String(port) },
    });
    assert.equal((await broker.exited()).code, 1);
    const failed = broker.logs.find((l) => String(l.msg).startsWith("cannot start:"))!;
    assert.equal(failed.key, "listeners.tcp");
    assert.equal(failed.address, `127.0.0.1:${port}`);
    assert.match(
      String(failed.msg),
      new RegExp(`^cannot start: listeners\\.tcp: cannot listen on 127\\.0\\.0\\.1:${port}: `),
    );
  } finally {
    taken.close();
  }
});

runtimeTest(
  "--check-config opens the files the config names and parses certificates, naming each bad key",
  async (runtime) => {
    const certs = await makeCerts();
    const dir = certs.dir;
    try {
      await Deno.writeTextFile(
        `${dir}/broken.crt`,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
      );
      await Deno.writeTextFile(
        `${dir}/acl.yaml`,
        "- { permission: allow, action: jump, topic: a }\n",
      );
      const config = `${dir}/perch.yaml`;
      await Deno.writeTextFile(
        config,
        [
          "listeners:",
          `  tls: { enabled: true, cert: ${dir}/broken.crt, key: ${dir}/server.key }`,
          `  wss: { enabled: true, cert: ${dir}/server.crt, key: ${dir}/client.key }`,
          `admin: { tls: { cert: ${dir}/missing.crt, key: ${dir}/server.key } }`,
          `acl: { file: ${dir}/acl.yaml }`,
        ].join("\n"),
      );
      const run = (path: string) => runBroker(runtime, ["-c", path, "--check-config"]);
      const bad = await run(config);
      assert.equal(bad.code, 1);
      const lines = new TextDecoder().decode(bad.stderr).trim().split("\n");
      assert.equal(lines[0], "Invalid configuration: 4 problems");
      assert.match(
        lines[1],
        /^ {2}listeners\.tls\.cert: .*broken\.crt: certificate 1 does not parse: /,
      );
      assert.match(
        lines[2],
        /^ {2}listeners\.wss\.key: does not match the certificate of listeners\.wss\.cert$/,
      );
      assert.match(lines[3], /^ {2}admin\.tls\.cert: .*missing\.crt: cannot read the file: /);
      assert.match(lines[4], /^ {2}acl\.file: .*acl\.yaml: rule 0: action: /);

      await Deno.writeTextFile(`${dir}/acl.yaml`, "[]\n");
      await Deno.writeTextFile(
        config,
        [
          "listeners:",
          `  tls: { enabled: true, cert: ${dir}/server.crt, key: ${dir}/server.key, ca: ${dir}/ca.crt, requestClientCert: true }`,
          `admin: { tls: { cert: ${dir}/server.crt, key: ${dir}/server.key } }`,
          `acl: { file: ${dir}/acl.yaml }`,
        ].join("\n"),
      );
      const good = await run(config);
      assert.equal(new TextDecoder().decode(good.stdout), "Configuration is valid\n");
      assert.equal(good.code, 0);
    } finally {
      await certs.remove();
    }
  },
);

runtimeTest(
  "main logs only JSON lines, a connect and a disconnect line per client, over TLS, WebSocket and an HTTPS admin API",
  async (runtime) => {
    const certs = await makeCerts();
    const dir = certs.dir;
    const broker = await startBrokerProcess(runtime, {
      startTask: true,
      env: {
        PERCH_LOG__LEVEL: "debug",
        PERCH_LISTENERS__TLS__ENABLED: "true",
        PERCH_LISTENERS__TLS__HOST: "127.0.0.1",
        PERCH_LISTENERS__TLS__PORT: "0",
        PERCH_LISTENERS__TLS__CERT: `${dir}/server.crt`,
        PERCH_LISTENERS__TLS__KEY: `${dir}/server.key`,
        PERCH_LISTENERS__WS__ENABLED: "true",
        PERCH_LISTENERS__WS__HOST: "127.0.0.1",
        PERCH_LISTENERS__WS__PORT: "0",
        PERCH_LISTENERS__WS__ALLOWED_ORIGINS: "https://app.example.com",
        PERCH_ADMIN__TLS__CERT: `${dir}/server.crt`,
        PERCH_ADMIN__TLS__KEY: `${dir}/server.key`,
      },
    });
    try {
      const ports = await broker.started();
      assert.equal((await broker.line("admin API started")).scheme, "https");
      const client = Deno.createHttpClient({ caCerts: [certs.caCert] });
      const health = await fetch(`https://localhost:${ports.admin}/healthz`, { client });
      assert.equal(health.status, 200);
      await health.body?.cancel();
      client.close();

      const tls = await Deno.connectTls({
        hostname: "localhost",
        port: ports.tls!,
        caCerts: [certs.caCert],
      });
      const overTls = TestClient.wrap(tls, 5);
      assert.equal(
        (await overTls.sendConnect({ clientId: "over-tls", username: undefined })).reasonCode,
        0,
      );
      await overTls.disconnect();
      const refused = await RawWebSocket.connect(ports.ws!, {
        protocols: ["mqtt"],
        headers: { Origin: "https://evil.example" },
      });
      assert.equal(refused.response.status, 403);
      const { socket } = await RawWebSocket.connect(ports.ws!, { protocols: ["mqtt"] });
      const overWs = TestClient.wrap(socket!, 4);
      assert.equal((await overWs.sendConnect({ clientId: "over-ws" })).reasonCode, 0);
      await overWs.destroy();
      const disconnected = await broker.line("client disconnected", { clientId: "over-tls" });
      assert.deepEqual(
        [disconnected.listener, disconnected.reason, disconnected.protocol],
        ["tls", "client_disconnect", 5],
      );
      const lost = await broker.line("client disconnected", { clientId: "over-ws" });
      assert.equal(lost.reason, "connection_lost");
    } finally {
      assert.equal((await broker.stop()).code, 0);
      await certs.remove();
    }
    // The broker's own "client connected" lines are at debug level; these are the info lines.
    const connected = broker.logs.filter((l) => l.msg === "client connected" && l.level === "info");
    assert.deepEqual(connected.map((l) => [l.clientId, l.listener, l.remote, l.level]), [
      ["over-tls", "tls", "127.0.0.1", "info"],
      ["over-ws", "ws", "127.0.0.1", "info"],
    ]);
    // Every line of stdout and stderr is a JSON log entry: nothing the runtime printed by itself.
    const notJson = broker.logs.filter((l) =>
      typeof l.time !== "string" || typeof l.level !== "string"
    );
    assert.deepEqual(notJson, []);
  },
);
