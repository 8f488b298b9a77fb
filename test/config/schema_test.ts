import assert from "node:assert/strict";
import { type Config, configSchema } from "../../src/config/schema.ts";

const DEFAULTS: Omit<Config, "node"> = {
  log: { level: "info", format: "text" },
  listeners: {
    tcp: {
      enabled: true,
      host: "0.0.0.0",
      port: 1883,
      nativeHandle: true,
      proxyProtocol: { enabled: false, trustedSources: [], timeout: 5_000 },
    },
    tls: { enabled: false, host: "0.0.0.0", port: 8883, requestClientCert: false },
    ws: {
      enabled: false,
      host: "0.0.0.0",
      port: 8083,
      path: "/mqtt",
      trustedProxies: [],
      allowedOrigins: ["*"],
      proxyHeader: "x-forwarded-for",
    },
    wss: {
      enabled: false,
      host: "0.0.0.0",
      port: 8084,
      path: "/mqtt",
      trustedProxies: [],
      allowedOrigins: ["*"],
      proxyHeader: "x-forwarded-for",
    },
  },
  mqtt: {
    maxPacketSize: 1_048_576,
    connectTimeout: 10_000,
    maxClientIdLength: 256,
    allowEmptyClientId: true,
    maxKeepAlive: 65535,
    keepAliveMultiplier: 1.5,
    receiveMaximum: 1024,
    maxInflight: 32,
    maxQueuedMessages: 1000,
    maxQueuedBytes: 16_777_216,
    maxQos: 2,
    retainAvailable: true,
    wildcardSubscriptionAvailable: true,
    sharedSubscriptionAvailable: true,
    subscriptionIdentifierAvailable: true,
    topicAliasMaximum: 64,
    outboundTopicAliases: "lru",
    maxTopicLength: 65535,
    maxTopicLevels: 128,
    maxSubscriptionsPerClient: 1000,
    maxSessionExpiryInterval: 4_294_967_295,
    writeBufferLimit: 8_388_608,
    responseInformation: "response/%c",
    rejectControlCharacters: true,
    validatePayloadFormat: false,
    serverReference: "",
    serverMoved: false,
    slowConsumerTimeout: 10_000,
    queueFullPolicy: "wait",
    stuckSubscriberTimeout: 3_000,
    sessionSweepInterval: 30_000,
  },
  limits: {
    maxQueuedBytesTotal: 1_073_741_824,
    maxConnections: 100_000,
    maxConnectionsPerAddress: 1000,
    connectRatePerAddress: 100,
    publishRate: 0,
    exemptLoopback: true,
  },
  auth: {
    anonymous: "loopback",
    chain: [],
    passwordFile: { watch: true },
    http: { timeout: 5_000, cacheSize: 1000, cacheTtl: 60_000, failPolicy: "closed" },
    jwt: {
      publicKeyAlgorithm: "RS256",
      clockSkew: 30_000,
      requireExpiry: true,
      usernameClaim: "sub",
      aclClaim: "acl",
    },
    certificate: { usernameFromCommonName: true },
    scram: { enabled: false },
  },
  acl: { default: "allow", rules: [], watch: true },
  admin: {
    enabled: true,
    host: "0.0.0.0",
    port: 8888,
    tokens: [],
    users: [],
    jwtTtl: 900_000,
    maxBodySize: 2_097_152,
    publicMetrics: false,
    webSocket: false,
    tls: {},
    loginMaxFailures: 5,
    loginLockout: 300_000,
    maxBans: 10_000,
  },
  retained: { maxMessages: 1_000_000, maxBytes: 536_870_912 },
  sys: { enabled: true, interval: 10_000 },
  backbone: { kind: "memory", timeout: 5_000 },
  notify: {
    webhook: { timeout: 5_000, retries: 3, retryDelay: 1_000, queueSize: 10_000, concurrency: 1 },
    grpc: {
      tls: { enabled: false },
      timeout: 5_000,
      retries: 3,
      retryDelay: 1_000,
      queueSize: 10_000,
      concurrency: 1,
    },
    nats: {
      enabled: false,
      timeout: 5_000,
      retries: 3,
      retryDelay: 1_000,
      queueSize: 10_000,
      concurrency: 1,
    },
  },
  agent: { enabled: false, legacyConnectInfo: false, maxAgents: 100_000 },
  bridge: {
    kafka: {
      brokers: [],
      clientId: "perch",
      tls: { enabled: false },
      sasl: { mechanism: "none" },
      compression: "none",
      batch: { maxMessages: 500, maxBytes: 524_288, linger: 5 },
      idempotent: true,
      acks: "all",
      buffer: { maxMessages: 100_000, maxBytes: 268_435_456 },
      retry: { initialDelay: 100, maxDelay: 30_000 },
      mappings: [],
      connectTimeout: 10_000,
      requestTimeout: 30_000,
    },
  },
  memory: { idleCollection: true, idleCollectionAfter: 1000 },
  shutdown: { gracePeriod: 5_000 },
};

function issuesOf(input: unknown) {
  const result = configSchema.safeParse(input);
  assert.equal(result.success, false, "expected the input to be rejected");
  return result.error!.issues.map((i) => ({ path: i.path.join("."), message: i.message }));
}

Deno.test("configSchema turns {} into a complete working config", () => {
  const { node, ...rest } = configSchema.parse({});
  assert.deepEqual(rest, DEFAULTS);
  assert.match(node.id, /^[A-Za-z0-9_-]+-\d+$/);
  assert.ok(node.id.endsWith(`-${Deno.pid}`));
});

Deno.test("configSchema fills in defaults around the keys given", () => {
  const config = configSchema.parse({
    listeners: { tcp: { port: 0 } },
    mqtt: { maxQos: 1 },
    node: { id: "edge-1" },
  });
  assert.equal(config.listeners.tcp.port, 0);
  assert.equal(config.listeners.tcp.host, "0.0.0.0");
  assert.equal(config.mqtt.maxQos, 1);
  assert.equal(config.mqtt.maxInflight, 32);
  assert.equal(config.node.id, "edge-1");
});

Deno.test("configSchema normalizes durations to milliseconds and sizes to bytes", () => {
  const config = configSchema.parse({
    mqtt: {
      connectTimeout: "500ms",
      maxPacketSize: "64KiB",
      maxQueuedBytes: 1000,
      writeBufferLimit: "16kb",
    },
    retained: { maxBytes: "1GiB" },
    sys: { interval: 30 },
    shutdown: { gracePeriod: "1m" },
  });
  assert.equal(config.mqtt.connectTimeout, 500);
  assert.equal(config.mqtt.maxPacketSize, 65_536);
  assert.equal(config.mqtt.maxQueuedBytes, 1000);
  assert.equal(config.mqtt.writeBufferLimit, 16_000);
  assert.equal(config.retained.maxBytes, 1_073_741_824);
  assert.equal(config.sys.interval, 30_000);
  assert.equal(config.shutdown.gracePeriod, 60_000);
});

Deno.test("configSchema rejects unknown keys at every level", () => {
  assert.deepEqual(
    issuesOf({ extra: 1, mqtt: { maxQoS: 2 }, backbone: { kind: "memory", url: "x" } }).map((i) =>
      i.path
    ),
    [
      "mqtt",
      "backbone",
      "",
    ],
  );
});

Deno.test("configSchema writes each expectation into the message", () => {
  assert.deepEqual(
    issuesOf({
      node: { id: "a.b" },
      log: { level: "verbose", format: 1 },
      listeners: { tcp: { enabled: "yes", port: 70000, host: "" } },
      mqtt: {
        maxPacketSize: "1GiB",
        connectTimeout: "0s",
        maxClientIdLength: 22,
        keepAliveMultiplier: 0.5,
        maxQos: 3,
        maxQueuedMessages: -1,
        maxSessionExpiryInterval: 2 ** 32,
        outboundTopicAliases: "fifo",
      },
      sys: { interval: "soon" },
      retained: { maxBytes: "lots" },
    }),
    [
      { path: "node.id", message: 'expected 1 to 128 letters, digits, "-" or "_"' },
      { path: "log.level", message: 'expected "debug", "info", "warn", "error" or "silent"' },
      { path: "log.format", message: 'expected "text" or "json"' },
      { path: "listeners.tcp.enabled", message: "expected true or false" },
      { path: "listeners.tcp.host", message: "expected a host name or IP address" },
      { path: "listeners.tcp.port", message: "expected an integer from 0 to 65535" },
      { path: "mqtt.maxPacketSize", message: "expected a size from 2 to 268435460 bytes" },
      { path: "mqtt.connectTimeout", message: "expected a duration of at least 1ms" },
      { path: "mqtt.maxClientIdLength", message: "expected an integer from 23 to 65535" },
      { path: "mqtt.keepAliveMultiplier", message: "expected a number from 1 to 10" },
      { path: "mqtt.maxQueuedMessages", message: "expected an integer of at least 0" },
      { path: "mqtt.maxQos", message: "expected 0, 1 or 2" },
      { path: "mqtt.outboundTopicAliases", message: 'expected "off" or "lru"' },
      {
        path: "mqtt.maxSessionExpiryInterval",
        message: "expected an integer from 0 to 4294967295",
      },
      {
        path: "retained.maxBytes",
        message: 'expected a size such as "64KiB", "1MiB", "1GiB" or "16kb", or a number of bytes',
      },
      {
        path: "sys.interval",
        message:
          'expected a duration such as "500ms", "10s", "5m", "2h" or "1d", or a number of seconds',
      },
    ],
  );
});

Deno.test("configSchema accepts the boundary values", () => {
  const config = configSchema.parse({
    listeners: { tcp: { port: 65535 } },
    mqtt: {
      maxPacketSize: 268_435_460,
      maxClientIdLength: 23,
      maxSessionExpiryInterval: 0,
      topicAliasMaximum: 0,
      maxQos: 0,
      keepAliveMultiplier: 1,
    },
    shutdown: { gracePeriod: 0 },
  });
  assert.equal(config.mqtt.maxPacketSize, 268_435_460);
  assert.equal(config.mqtt.maxQos, 0);
  assert.equal(config.shutdown.gracePeriod, 0);
});

Deno.test("configSchema requires cert and key when listeners.tls.enabled is true", () => {
  assert.deepEqual(issuesOf({ listeners: { tls: { enabled: true } } }), [
    { path: "listeners.tls.cert", message: "required when listeners.tls.enabled is true" },
    { path: "listeners.tls.key", message: "required when listeners.tls.enabled is true" },
  ]);
  assert.deepEqual(issuesOf({ listeners: { tls: { requestClientCert: true } } }), [
    { path: "listeners.tls.ca", message: "required when listeners.tls.requestClientCert is true" },
  ]);
  const tls =
    configSchema.parse({ listeners: { tls: { enabled: true, cert: "c.pem", key: "k.pem" } } })
      .listeners.tls;
  assert.deepEqual(tls, {
    enabled: true,
    host: "0.0.0.0",
    port: 8883,
    cert: "c.pem",
    key: "k.pem",
    requestClientCert: false,
  });
});

Deno.test("configSchema accepts only known backbone kinds", () => {
  assert.deepEqual(issuesOf({ backbone: { kind: "kafka" } }), [{
    path: "backbone.kind",
    message: 'expected "memory", "nats" or "sqlite"',
  }]);
  assert.deepEqual(issuesOf({ backbone: {} }), [{
    path: "backbone.kind",
    message: 'expected "memory", "nats" or "sqlite"',
  }]);
  assert.deepEqual(issuesOf({ backbone: "memory" }), [{
    path: "backbone",
    message: "expected a mapping",
  }]);
  assert.deepEqual(configSchema.parse({ backbone: { kind: "memory" } }).backbone, {
    kind: "memory",
    timeout: 5000,
  });
});

Deno.test("configSchema: the sqlite backbone syncs every change by default; a batched window is bounded", () => {
  assert.deepEqual(configSchema.parse({ backbone: { kind: "sqlite" } }).backbone, {
    kind: "sqlite",
    path: "./data/perch.db",
    sync: "full",
    syncWindow: 50,
    timeout: 5000,
  });
  assert.deepEqual(
    issuesOf({ backbone: { kind: "sqlite", sync: "never", syncWindow: "1m", path: "" } }),
    [
      { path: "backbone.path", message: "expected a non-empty string" },
      { path: "backbone.sync", message: 'expected "full" or "batched"' },
      { path: "backbone.syncWindow", message: "expected a duration from 1ms to 10s" },
    ],
  );
});

Deno.test("configSchema rejects a section that is not a mapping", () => {
  assert.deepEqual(issuesOf({ mqtt: [1], listeners: { tcp: 5 } }), [
    { path: "listeners.tcp", message: "expected a mapping" },
    { path: "mqtt", message: "expected a mapping" },
  ]);
});

Deno.test("configSchema never limits client ids below 23 characters [MQTT-3.1.3-5]", () => {
  assert.equal(configSchema.parse({ mqtt: { maxClientIdLength: 23 } }).mqtt.maxClientIdLength, 23);
  assert.equal(configSchema.safeParse({ mqtt: { maxClientIdLength: 22 } }).success, false);
});

Deno.test("configSchema defaults the keepalive grace to 1.5 periods [MQTT-3.1.2-24]", () => {
  assert.equal(configSchema.parse({}).mqtt.keepAliveMultiplier, 1.5);
});

Deno.test("configSchema accepts address lists as YAML lists or comma-separated text", () => {
  const fromList = configSchema.parse({
    listeners: { tcp: { proxyProtocol: { enabled: true, trustedSources: ["10.0.0.0/8", "::1"] } } },
  });
  assert.deepEqual(fromList.listeners.tcp.proxyProtocol.trustedSources, ["10.0.0.0/8", "::1"]);
  const fromText = configSchema.parse({
    listeners: { ws: { trustedProxies: "10.0.0.0/8, 192.168.0.1" } },
  });
  assert.deepEqual(fromText.listeners.ws.trustedProxies, ["10.0.0.0/8", "192.168.0.1"]);
});

Deno.test("configSchema names a bad address list entry", () => {
  assert.deepEqual(
    issuesOf({ listeners: { tcp: { proxyProtocol: { trustedSources: ["10.0.0.0/8", "lb1"] } } } }),
    [{
      path: "listeners.tcp.proxyProtocol.trustedSources.1",
      message: 'not an IP address or CIDR range: "lb1"',
    }],
  );
});

Deno.test("configSchema requires cert and key for an enabled wss listener", () => {
  assert.deepEqual(issuesOf({ listeners: { wss: { enabled: true } } }), [
    { path: "listeners.wss.cert", message: "required when listeners.wss.enabled is true" },
    { path: "listeners.wss.key", message: "required when listeners.wss.enabled is true" },
  ]);
});

Deno.test("configSchema checks WebSocket paths and proxy header names", () => {
  assert.deepEqual(
    issuesOf({ listeners: { ws: { path: "mqtt", proxyHeader: "x forwarded" } } }).map((i) =>
      i.path
    ),
    ["listeners.ws.path", "listeners.ws.proxyHeader"],
  );
  const config = configSchema.parse({ listeners: { ws: { proxyHeader: "X-Real-IP" } } });
  assert.equal(config.listeners.ws.proxyHeader, "x-real-ip");
});

Deno.test("configSchema reads admin tokens as a list or JSON text and checks each field", () => {
  const token = "0123456789abcdef";
  const config = configSchema.parse({
    admin: { tokens: JSON.stringify([{ token, role: "viewer", name: "grafana" }]) },
  });
  assert.deepEqual(config.admin.tokens, [{ token, role: "viewer", name: "grafana" }]);
  assert.deepEqual(
    issuesOf({
      admin: {
        tokens: [{ token: "short", role: "root" }, { token, role: "admin" }, {
          token,
          role: "admin",
        }],
      },
    }),
    [
      { path: "admin.tokens.0.token", message: "expected a string of at least 16 characters" },
      { path: "admin.tokens.0.role", message: 'expected "admin" or "viewer"' },
    ],
  );
  assert.deepEqual(
    issuesOf({ admin: { tokens: [{ token, role: "admin" }, { token, role: "admin" }] } }),
    [
      { path: "admin.tokens.1.token", message: "duplicate token" },
    ],
  );
});

Deno.test("configSchema requires a 32-character JWT secret", () => {
  assert.deepEqual(issuesOf({ admin: { jwtSecret: "too short" } }), [
    { path: "admin.jwtSecret", message: "expected a string of at least 32 characters" },
  ]);
});

Deno.test("configSchema requires the password file provider for SCRAM", () => {
  assert.deepEqual(issuesOf({ auth: { scram: { enabled: true } } }), [{
    path: "auth.chain",
    message: 'expected "passwordFile" in the list when auth.scram.enabled is true',
  }]);
});

Deno.test("configSchema takes API users with SCRAM verifiers only, never a plain password", () => {
  const verifier = "SCRAM-SHA-256$4096:c2FsdA==$" + "A".repeat(43) + "=:" + "B".repeat(43) + "=";
  const config = configSchema.parse({
    admin: { users: [{ username: "ops", password: verifier, role: "admin" }] },
  });
  assert.equal(config.admin.users[0].password, verifier);
  const issues = issuesOf({
    admin: { users: [{ username: "ops", password: "hunter2", role: "admin" }] },
  });
  assert.equal(issues.length, 1);
  assert.equal(issues[0].path, "admin.users.0.password");
  assert.match(issues[0].message, /^expected a SCRAM-SHA-256 verifier/);
  assert.deepEqual(
    issuesOf({
      admin: {
        users: [
          { username: "ops", password: verifier, role: "admin" },
          { username: "ops", password: verifier, role: "viewer" },
        ],
      },
    }),
    [{ path: "admin.users.1.username", message: "duplicate user name" }],
  );
});

Deno.test("configSchema: the nats backbone's defaults, and bad values named by their key", () => {
  assert.deepEqual(configSchema.parse({ backbone: { kind: "nats" } }).backbone, {
    kind: "nats",
    servers: ["nats://127.0.0.1:4222"],
    tls: {},
    prefix: "perch",
    replicas: 1,
    storage: "file",
    leaseTimeout: 10_000,
    ackWait: 30_000,
    timeout: 5_000,
  });
  assert.deepEqual(
    configSchema.parse({ backbone: { kind: "nats", leaseTimeout: "3s", ackWait: "1m" } }).backbone,
    configSchema.parse({ backbone: { kind: "nats", leaseTimeout: 3, ackWait: 60 } }).backbone,
  );
  assert.deepEqual(
    issuesOf({
      backbone: {
        kind: "nats",
        servers: ["127.0.0.1:4222"],
        prefix: "a.b",
        replicas: 0,
        storage: "disk",
        tls: { cert: "c.pem" },
        leaseTimeout: "500ms",
        ackWait: "0s",
      },
    }).map((issue) => issue.path),
    [
      "backbone.servers.0",
      "backbone.tls.key",
      "backbone.prefix",
      "backbone.replicas",
      "backbone.storage",
      "backbone.leaseTimeout",
      "backbone.ackWait",
    ],
  );
});

Deno.test("notify and agent: errors name the field", () => {
  const issues = (input: unknown) =>
    configSchema.safeParse(input).error?.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  assert.deepEqual(issues({ notify: { webhook: { url: "ftp://x" } } }), [
    "notify.webhook.url: expected an http:// or https:// URL",
  ]);
  assert.deepEqual(issues({ notify: { grpc: { server: "no-port" } } }), [
    'notify.grpc.server: expected host:port, such as "127.0.0.1:9999"',
  ]);
  assert.deepEqual(issues({ notify: { grpc: { server: "h:1", tls: { cert: "c.pem" } } } }), [
    "notify.grpc.tls.key: cert and key go together",
  ]);
  assert.deepEqual(issues({ notify: { nats: { enabled: true } } }), [
    "notify.nats.servers: required when notify.nats.enabled is true and backbone.kind is not nats",
  ]);
  assert.deepEqual(issues({ agent: { maxAgents: 0 } }), [
    "agent.maxAgents: expected an integer from 1 to 10000000",
  ]);
  const ok = configSchema.parse({
    backbone: { kind: "nats" },
    notify: { nats: { enabled: true }, webhook: { url: "https://h/x/" } },
  });
  assert.equal(ok.notify.webhook.url, "https://h/x");
});

Deno.test("configSchema: bridge.kafka names the field of each mistake", () => {
  assert.deepEqual(
    issuesOf({
      bridge: {
        kafka: {
          brokers: ["kafka-1:9092", "no-port"],
          acks: "leader",
          sasl: { mechanism: "scram-sha-256", username: "perch" },
        },
      },
    }),
    [
      { path: "bridge.kafka.brokers.1", message: 'not a host:port: "no-port"' },
      {
        path: "bridge.kafka.sasl.password",
        message: 'required when bridge.kafka.sasl.mechanism is "scram-sha-256"',
      },
      { path: "bridge.kafka.acks", message: 'expected "all" when bridge.kafka.idempotent is true' },
    ],
  );
  const config = configSchema.parse({
    bridge: { kafka: { brokers: "kafka-1:9092, [::1]:9093", idempotent: false, acks: "leader" } },
  });
  assert.deepEqual(config.bridge.kafka.brokers, ["kafka-1:9092", "[::1]:9093"]);
  assert.deepEqual(
    issuesOf({
      bridge: {
        kafka: {
          mappings: [
            { name: "a", filter: "x/#/y", kafkaTopic: ".." },
            { name: "a", filter: "$queue/x", kafkaTopic: "ok", key: "{nope}", copy: "yes" },
          ],
        },
      },
    }).map((issue) => issue.path),
    [
      "bridge.kafka.mappings.0.filter",
      "bridge.kafka.mappings.0.kafkaTopic",
      "bridge.kafka.mappings.1.filter",
      "bridge.kafka.mappings.1.key",
      "bridge.kafka.mappings.1.copy",
    ],
  );
  const twice = { name: "a", filter: "a", kafkaTopic: "a" };
  assert.deepEqual(issuesOf({ bridge: { kafka: { mappings: [twice, twice] } } }), [
    { path: "bridge.kafka.mappings.1.name", message: "duplicate mapping name" },
  ]);
});
