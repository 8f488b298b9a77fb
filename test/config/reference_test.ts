import assert from "node:assert/strict";
import { parse } from "yaml";
import { describeConfig } from "../../src/config/reference.ts";
import { configSchema } from "../../src/config/schema.ts";

/** Dotted paths of every leaf in a parsed config. */
function leafPaths(value: unknown, path: string[] = []): string[] {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return [path.join(".")];
  return Object.entries(value).flatMap(([key, child]) => leafPaths(child, [...path, key]));
}

Deno.test("describeConfig() documents every key with a type and a description", () => {
  const entries = describeConfig();
  for (const entry of entries) {
    assert.ok(entry.type.length > 0, `${entry.path} has no type`);
    assert.ok(entry.description.length > 0, `${entry.path} has no description`);
    assert.match(entry.description, /\.$/, `${entry.path}: a description is a sentence`);
  }
  const documented = entries.map((e) => e.path);
  assert.equal(new Set(documented).size, documented.length);
  const parsed = leafPaths(configSchema.parse({}));
  const optional = [
    "listeners.tls.cert",
    "listeners.tls.key",
    "listeners.tls.ca",
    "auth.passwordFile.path",
    "auth.http.url",
    "auth.jwt.secret",
    "auth.jwt.publicKeyFile",
    "auth.jwt.jwksFile",
    "auth.jwt.issuer",
    "auth.jwt.audience",
    "acl.file",
    "listeners.wss.cert",
    "listeners.wss.key",
    "admin.jwtSecret",
    "admin.tls.cert",
    "admin.tls.key",
    "notify.webhook.url",
    "notify.webhook.secret",
    "notify.grpc.server",
    "notify.grpc.tls.ca",
    "notify.grpc.tls.cert",
    "notify.grpc.tls.key",
    "notify.nats.servers",
    "notify.nats.prefix",
    "notify.nats.user",
    "notify.nats.password",
    "notify.nats.token",
    "bridge.kafka.tls.ca",
    "bridge.kafka.tls.cert",
    "bridge.kafka.tls.key",
    "bridge.kafka.sasl.username",
    "bridge.kafka.sasl.password",
  ];
  // Every key of the nats and sqlite backbones (the default is memory), beyond the common
  // `timeout`.
  const nats = leafPaths({ backbone: configSchema.parse({ backbone: { kind: "nats" } }).backbone })
    .filter((path) => path !== "backbone.kind" && path !== "backbone.timeout");
  const sqlite = ["backbone.path", "backbone.sync", "backbone.syncWindow"];
  const natsOptional = ["user", "password", "token", "nkeySeedFile", "credsFile"]
    .concat(["tls.ca", "tls.cert", "tls.key"]).map((key) => `backbone.${key}`);
  assert.deepEqual(
    [...documented].sort(),
    [...parsed, ...optional, ...nats, ...natsOptional, ...sqlite].sort(),
  );
});

Deno.test("describeConfig() lists keys in schema order with types and YAML defaults", () => {
  const byPath = new Map(describeConfig().map((e) => [e.path, e]));
  assert.equal(describeConfig()[0].path, "node.id");
  assert.deepEqual(byPath.get("node.id"), {
    path: "node.id",
    type: "string",
    default: "<hostname>-<pid>",
    description: "This broker's name in logs, $SYS topics and the cluster.",
  });
  assert.deepEqual(
    [
      "log.level",
      "listeners.tcp.port",
      "listeners.tls.cert",
      "mqtt.maxPacketSize",
      "mqtt.connectTimeout",
      "mqtt.maxQos",
    ]
      .map((path) => [path, byPath.get(path)?.type, byPath.get(path)?.default]),
    [
      ["log.level", '"debug" | "info" | "warn" | "error" | "silent"', "info"],
      ["listeners.tcp.port", "integer 0..65535", "1883"],
      ["listeners.tls.cert", "path", undefined],
      ["mqtt.maxPacketSize", "size 2B..268435460B", "1MiB"],
      ["mqtt.connectTimeout", "duration >= 1ms", "10s"],
      ["mqtt.maxQos", "0 | 1 | 2", "2"],
    ],
  );
  assert.deepEqual(byPath.get("backbone.kind"), {
    path: "backbone.kind",
    type: '"memory" | "nats" | "sqlite"',
    default: "memory",
    description:
      "Where sessions, subscriptions, queues and retained messages live. `memory`: one process, nothing else to run, state lost on exit. `nats`: sessions, queues, retained messages and routing in NATS JetStream, shared by every front-end (see docs/clustering.md). `sqlite`: one process, state kept in an SQLite file that survives restarts and crashes (see docs/persistence.md).",
  });
  // A key several kinds share is one row naming them.
  assert.match(byPath.get("backbone.timeout")!.description, /^\(kind: memory, nats, sqlite\) /);
  assert.deepEqual(
    [byPath.get("backbone.syncWindow")?.type, byPath.get("backbone.syncWindow")?.default],
    ["duration 1ms..10s", "50ms"],
  );
  assert.match(byPath.get("backbone.path")!.description, /^\(kind: sqlite\) /);
});

Deno.test("describeConfig() defaults, written back as YAML, give the schema defaults", () => {
  const input: Record<string, Record<string, unknown>> = {};
  for (const entry of describeConfig()) {
    if (entry.default === undefined || entry.path === "node.id") continue;
    // Keys of backbone kinds other than the default one.
    if (
      entry.description.startsWith("(kind: ") && !/^\(kind: [^)]*\bmemory\b/.test(entry.description)
    ) {
      continue;
    }
    const path = entry.path.split(".");
    let node: Record<string, unknown> = input;
    for (const key of path.slice(0, -1)) node = (node[key] ??= {}) as Record<string, unknown>;
    node[path.at(-1)!] = parse(entry.default);
  }
  const { node: _a, ...fromReference } = configSchema.parse(input);
  const { node: _b, ...defaults } = configSchema.parse({});
  assert.deepEqual(fromReference, defaults);
});
