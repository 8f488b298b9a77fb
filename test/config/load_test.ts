import assert from "node:assert/strict";
import { ConfigError } from "../../src/config/errors.ts";
import { loadConfig, type LoadConfigOptions } from "../../src/config/load.ts";
import { configSchema } from "../../src/config/schema.ts";

/** Writes `yaml` to a temporary file, runs `fn` with its path, and removes the file. */
async function withYaml<T>(yaml: string, fn: (file: string) => Promise<T>): Promise<T> {
  const file = await Deno.makeTempFile({ prefix: "perch_config_", suffix: ".yaml" });
  try {
    await Deno.writeTextFile(file, yaml);
    return await fn(file);
  } finally {
    await Deno.remove(file);
  }
}

/** Loads a config that must fail; returns its problems as message lines, with the temp file path replaced by `FILE`. */
async function problems(options: LoadConfigOptions, yaml?: string): Promise<string[]> {
  const run = async (file?: string) => {
    try {
      await loadConfig({ ...options, file });
    } catch (error) {
      assert.ok(error instanceof ConfigError, String(error));
      const lines = error.message.split("\n");
      assert.match(lines[0], /^Invalid configuration: \d+ problems?$/);
      assert.equal(lines.length - 1, error.issues.length);
      return lines.slice(1).map((line) =>
        file === undefined ? line.trim() : line.trim().replaceAll(file, "FILE")
      );
    }
    assert.fail("expected a ConfigError");
  };
  return yaml === undefined ? await run(options.file) : await withYaml(yaml, run);
}

function withoutNodeId<T extends { node: unknown }>(config: T): Omit<T, "node"> {
  const { node: _, ...rest } = config;
  return rest;
}

Deno.test("loadConfig() without a file gives the defaults", async () => {
  const config = await loadConfig();
  assert.deepEqual(withoutNodeId(config), withoutNodeId(configSchema.parse({})));
  assert.equal(config.listeners.tcp.port, 1883);
});

Deno.test("loadConfig() reads a YAML file, normalizing durations and sizes", async () => {
  const yaml = `# Perch test config
node:
  id: edge-7
log:
  level: debug
  format: json
listeners:
  tcp:
    host: 127.0.0.1
    port: 0
  tls:
    enabled: true
    port: 8884
    cert: /etc/perch/cert.pem
    key: /etc/perch/key.pem
    ca: /etc/perch/ca.pem
    requestClientCert: true
mqtt:
  maxPacketSize: 64KiB
  connectTimeout: 500ms
  maxQueuedBytes: 16kb
  keepAliveMultiplier: 2
  maxQos: 1
  outboundTopicAliases: "off"
  maxSessionExpiryInterval: 3600
retained:
  maxMessages: 10
  maxBytes: 1MiB
sys:
  enabled: false
  interval: 1m
backbone:
  kind: memory
shutdown:
  gracePeriod: 0
`;
  const config = await withYaml(yaml, (file) => loadConfig({ file }));
  assert.deepEqual(config, {
    ...configSchema.parse({}),
    node: { id: "edge-7" },
    log: { level: "debug", format: "json" },
    listeners: {
      ...configSchema.parse({}).listeners,
      tcp: { ...configSchema.parse({}).listeners.tcp, host: "127.0.0.1", port: 0 },
      tls: {
        enabled: true,
        host: "0.0.0.0",
        port: 8884,
        cert: "/etc/perch/cert.pem",
        key: "/etc/perch/key.pem",
        ca: "/etc/perch/ca.pem",
        requestClientCert: true,
      },
    },
    mqtt: {
      ...configSchema.parse({}).mqtt,
      maxPacketSize: 65_536,
      connectTimeout: 500,
      maxQueuedBytes: 16_000,
      keepAliveMultiplier: 2,
      maxQos: 1,
      outboundTopicAliases: "off",
      maxSessionExpiryInterval: 3600,
    },
    retained: { maxMessages: 10, maxBytes: 1_048_576 },
    sys: { enabled: false, interval: 60_000 },
    backbone: { kind: "memory", timeout: 5000 },
    shutdown: { gracePeriod: 0 },
  });
});

Deno.test("loadConfig() treats an empty file, a comments-only file and empty sections as defaults", async () => {
  const defaults = withoutNodeId(configSchema.parse({}));
  for (const yaml of ["", "# nothing yet\n", "listeners:\n  # tcp: {port: 1}\nmqtt:\nsys: {}\n"]) {
    const config = await withYaml(yaml, (file) => loadConfig({ file }));
    assert.deepEqual(withoutNodeId(config), defaults, JSON.stringify(yaml));
  }
});

Deno.test("loadConfig() names an unknown key, suggests the right one and gives its line", async () => {
  assert.deepEqual(await problems({}, "mqtt:\n  maxQoS: 2\n  retain: true\nlistener: {}\n"), [
    'mqtt.maxQoS: unknown key (did you mean "maxQos"?) (FILE:2:3)',
    "mqtt.retain: unknown key (FILE:3:3)",
    'listener: unknown key (did you mean "listeners"?) (FILE:4:1)',
  ]);
});

Deno.test("loadConfig() names the kind a key does not belong to", async () => {
  assert.deepEqual(await problems({}, "backbone:\n  kind: memory\n  path: x.db\n"), [
    'backbone.path: not a key of backbone.kind "memory" (FILE:3:3)',
  ]);
});

Deno.test("loadConfig() reports wrong types with what was expected and what was given", async () => {
  assert.deepEqual(
    await problems(
      {},
      "listeners:\n  tcp:\n    port: abc\n    enabled: yes\nlog: [debug]\nmqtt:\n  maxQos: two\n",
    ),
    [
      "log: expected a mapping, got a list (FILE:5:1)",
      'listeners.tcp.enabled: expected true or false, got "yes" (FILE:4:5)',
      'listeners.tcp.port: expected an integer from 0 to 65535, got "abc" (FILE:3:5)',
      'mqtt.maxQos: expected 0, 1 or 2, got "two" (FILE:7:3)',
    ],
  );
});

Deno.test("loadConfig() reports out-of-range values", async () => {
  assert.deepEqual(
    await problems(
      {},
      "listeners:\n  tcp:\n    port: 70000\nmqtt:\n  receiveMaximum: 0\n  maxPacketSize: 1GiB\n",
    ),
    [
      "listeners.tcp.port: expected an integer from 0 to 65535, got 70000 (FILE:3:5)",
      'mqtt.maxPacketSize: expected a size from 2 to 268435460 bytes, got "1GiB" (FILE:6:3)',
      "mqtt.receiveMaximum: expected an integer from 1 to 65535, got 0 (FILE:5:3)",
    ],
  );
});

Deno.test("loadConfig() reports malformed durations and sizes", async () => {
  assert.deepEqual(
    await problems({}, "mqtt:\n  connectTimeout: 10 sec\n  maxQueuedBytes: 16 megs\n"),
    [
      'mqtt.connectTimeout: expected a duration such as "500ms", "10s", "5m", "2h" or "1d", or a number of seconds, got "10 sec" (FILE:2:3)',
      'mqtt.maxQueuedBytes: expected a size such as "64KiB", "1MiB", "1GiB" or "16kb", or a number of bytes, got "16 megs" (FILE:3:3)',
    ],
  );
});

Deno.test("loadConfig() requires listeners.tls.cert and key when TLS is enabled", async () => {
  assert.deepEqual(
    await problems({}, "listeners:\n  tls:\n    enabled: true\n    key: key.pem\n"),
    [
      "listeners.tls.cert: required when listeners.tls.enabled is true (FILE:2:3)",
    ],
  );
  assert.deepEqual(await problems({ env: { PERCH_LISTENERS__TLS__ENABLED: "true" } }), [
    "listeners.tls.cert: required when listeners.tls.enabled is true",
    "listeners.tls.key: required when listeners.tls.enabled is true",
  ]);
});

Deno.test("loadConfig() reports YAML syntax errors with line and column", async () => {
  assert.deepEqual(await problems({}, "mqtt:\n  maxQos: 1\n  maxQos: 2\n"), [
    "FILE:3:3: invalid YAML: Map keys must be unique",
  ]);
  assert.deepEqual(await problems({}, "log: level: debug\n"), [
    "FILE:1:6: invalid YAML: Nested mappings are not allowed in compact mappings",
  ]);
});

Deno.test("loadConfig() requires a mapping at the top level", async () => {
  assert.deepEqual(await problems({}, "- listeners\n"), [
    "FILE:1:1: expected a mapping of settings at the top level, got a list",
  ]);
});

Deno.test("loadConfig() reports a file it cannot read, keeping the cause", async () => {
  const dir = await Deno.makeTempDir({ prefix: "perch_config_" });
  try {
    const file = `${dir}/missing.yaml`;
    const error = await loadConfig({ file }).catch((e) => e);
    assert.ok(error instanceof ConfigError);
    assert.ok(error.cause instanceof Error);
    assert.match(
      error.message,
      new RegExp(`^  ${file}: cannot read the file: .*no such file`, "mi"),
    );
  } finally {
    await Deno.remove(dir);
  }
});

Deno.test("loadConfig() applies environment overrides over the file", async () => {
  const config = await withYaml(
    "listeners:\n  tcp:\n    port: 1885\nlog:\n  level: warn\n",
    (file) =>
      loadConfig({
        file,
        env: {
          PERCH_LISTENERS__TCP__PORT: "1884",
          PERCH_MQTT__MAXPACKETSIZE: "2MiB",
          PERCH_SYS__ENABLED: "false",
          PERCH_NODE__ID: "1234",
          PATH: "/usr/bin",
        },
      }),
  );
  assert.equal(config.listeners.tcp.port, 1884);
  assert.equal(config.log.level, "warn");
  assert.equal(config.mqtt.maxPacketSize, 2_097_152);
  assert.equal(config.sys.enabled, false);
  assert.equal(config.node.id, "1234");
});

Deno.test("loadConfig() names the variable behind a bad or unknown environment override", async () => {
  assert.deepEqual(
    await problems({
      env: {
        PERCH_LISTENERS__TCP__PORT: "abc",
        PERCH_LOG__LEVL: "debug",
        PERCH_MQTT__CONNECTTIMEOUT: "-1",
      },
    }),
    [
      'env PERCH_LOG__LEVL: unknown key log.LEVL (did you mean "log.level"?)',
      'listeners.tcp.port: expected an integer from 0 to 65535, got "abc" (env PERCH_LISTENERS__TCP__PORT)',
      'mqtt.connectTimeout: expected a duration such as "500ms", "10s", "5m", "2h" or "1d", or a number of seconds, got -1 (env PERCH_MQTT__CONNECTTIMEOUT)',
    ],
  );
});

Deno.test("loadConfig() applies overrides last", async () => {
  const config = await withYaml("mqtt:\n  maxInflight: 8\n  maxQos: 1\n", (file) =>
    loadConfig({
      file,
      env: { PERCH_MQTT__MAXINFLIGHT: "16" },
      overrides: {
        mqtt: { maxInflight: 64, connectTimeout: "1s" },
        listeners: { tcp: { port: 0 } },
      },
    }));
  assert.equal(config.mqtt.maxInflight, 64);
  assert.equal(config.mqtt.maxQos, 1);
  assert.equal(config.mqtt.connectTimeout, 1_000);
  assert.equal(config.listeners.tcp.port, 0);
  assert.deepEqual(await problems({ overrides: { sys: { interval: "0s" } } }), [
    'sys.interval: expected a duration of at least 1s, got "0s" (overrides)',
  ]);
});

Deno.test("loadConfig() wants mqtt.stuckSubscriberTimeout shorter than backbone.timeout, which bounds every wait", async () => {
  assert.deepEqual(
    await problems({ env: { PERCH_MQTT__STUCKSUBSCRIBERTIMEOUT: "5s" } }),
    [
      "mqtt.stuckSubscriberTimeout: must be shorter than backbone.timeout (5000 ms), which bounds " +
      "every wait for room; got 5000 ms (env PERCH_MQTT__STUCKSUBSCRIBERTIMEOUT)",
    ],
  );
  const refusing = await loadConfig({
    overrides: { mqtt: { stuckSubscriberTimeout: "5s", queueFullPolicy: "refuse" } },
  });
  assert.equal(refusing.mqtt.stuckSubscriberTimeout, 5_000, "refuse never waits: no conflict");
  const longer = await loadConfig({
    overrides: {
      mqtt: { stuckSubscriberTimeout: "8s" },
      backbone: { kind: "memory", timeout: "10s" },
    },
  });
  assert.equal(longer.mqtt.stuckSubscriberTimeout, 8_000);
  const quick = await loadConfig({ overrides: { backbone: { kind: "memory", timeout: "2s" } } });
  assert.equal(quick.mqtt.stuckSubscriberTimeout, 1_000, "left out: half of backbone.timeout");
});

Deno.test("loadConfig() never prints a secret value", async () => {
  const lines = await problems({}, "listeners:\n  tls:\n    key: 12345\n    cert: [hunter2]\n");
  assert.deepEqual(lines, [
    "listeners.tls.cert: expected a file path, got a list (FILE:4:5)",
    "listeners.tls.key: expected a file path, got [redacted] (FILE:3:5)",
  ]);
});

Deno.test("loadConfig() lists every problem at once", async () => {
  const lines = await problems(
    { env: { PERCH_NOPE: "1" } },
    "node:\n  id: 'bad id'\nmqtt:\n  maxQoS: 1\n  maxInflight: 0\nbackbone:\n  kind: kafka\n",
  );
  assert.deepEqual(lines, [
    'env PERCH_NOPE: unknown key NOPE (did you mean "node"?)',
    'node.id: expected 1 to 128 letters, digits, "-" or "_", got "bad id" (FILE:2:3)',
    "mqtt.maxInflight: expected an integer from 1 to 65535, got 0 (FILE:5:3)",
    'mqtt.maxQoS: unknown key (did you mean "maxQos"?) (FILE:4:3)',
    'backbone.kind: expected "memory", "nats" or "sqlite", got "kafka" (FILE:7:3)',
  ]);
});
