import assert from "node:assert/strict";
import { ENV_PREFIX, ENV_SEPARATOR, readEnvOverrides } from "../../src/config/env.ts";

Deno.test("readEnvOverrides() maps PERCH_ variables to nested keys", () => {
  assert.equal(ENV_PREFIX, "PERCH_");
  assert.equal(ENV_SEPARATOR, "__");
  const { overrides, issues } = readEnvOverrides({
    PERCH_LISTENERS__TCP__PORT: "1884",
    PERCH_MQTT__MAXPACKETSIZE: "2MiB",
    PERCH_LOG__LEVEL: "debug",
    HOME: "/root",
    PERCHED: "x",
  });
  assert.deepEqual(issues, []);
  assert.deepEqual(overrides, [
    { variable: "PERCH_LISTENERS__TCP__PORT", path: ["listeners", "tcp", "port"], value: 1884 },
    { variable: "PERCH_LOG__LEVEL", path: ["log", "level"], value: "debug" },
    { variable: "PERCH_MQTT__MAXPACKETSIZE", path: ["mqtt", "maxPacketSize"], value: "2MiB" },
  ]);
});

Deno.test("readEnvOverrides() matches segments ignoring case and single underscores", () => {
  const { overrides, issues } = readEnvOverrides({
    PERCH_mqtt__MaxInflight: "8",
    PERCH_MQTT__MAX_QUEUED_MESSAGES: "5",
    PERCH_Listeners__TLS__REQUEST_CLIENT_CERT: "true",
  });
  assert.deepEqual(issues, []);
  assert.deepEqual(overrides.map((o) => [o.path.join("."), o.value]), [
    ["listeners.tls.requestClientCert", true],
    ["mqtt.maxQueuedMessages", 5],
    ["mqtt.maxInflight", 8],
  ]);
});

Deno.test("readEnvOverrides() reads values as YAML scalars, except for text-only keys", () => {
  const { overrides } = readEnvOverrides({
    PERCH_SYS__ENABLED: "false",
    PERCH_MQTT__KEEPALIVEMULTIPLIER: "2.5",
    PERCH_MQTT__CONNECTTIMEOUT: "30",
    PERCH_MQTT__MAXQOS: "0x1",
    PERCH_SHUTDOWN__GRACEPERIOD: "1m",
    PERCH_MQTT__MAXINFLIGHT: "",
    PERCH_MQTT__TOPICALIASMAXIMUM: "[1",
    PERCH_RETAINED__MAXMESSAGES: "{a: 1}",
    PERCH_NODE__ID: "1234",
    PERCH_LOG__FORMAT: "true",
    PERCH_LISTENERS__TLS__CERT: "null",
  });
  const values = Object.fromEntries(overrides.map((o) => [o.path.join("."), o.value]));
  assert.deepEqual(values, {
    "sys.enabled": false,
    "mqtt.keepAliveMultiplier": 2.5,
    "mqtt.connectTimeout": 30,
    "mqtt.maxQos": 1,
    "shutdown.gracePeriod": "1m",
    "mqtt.maxInflight": null,
    "mqtt.topicAliasMaximum": "[1",
    "retained.maxMessages": "{a: 1}",
    "node.id": "1234",
    "log.format": "true",
    "listeners.tls.cert": "null",
  });
});

Deno.test("readEnvOverrides() reports a variable naming an unknown key, with a suggestion", () => {
  const { overrides, issues } = readEnvOverrides({
    PERCH_MQTT__MAXQOSS: "1",
    PERCH_LISTENERZ__TCP__PORT: "1",
    PERCH_MQTT__NOSUCHTHING: "1",
  });
  assert.deepEqual(overrides, []);
  assert.deepEqual(issues, [
    {
      source: "env PERCH_LISTENERZ__TCP__PORT",
      message: 'unknown key LISTENERZ (did you mean "listeners"?)',
    },
    {
      source: "env PERCH_MQTT__MAXQOSS",
      message: 'unknown key mqtt.MAXQOSS (did you mean "mqtt.maxQos"?)',
    },
    { source: "env PERCH_MQTT__NOSUCHTHING", message: "unknown key mqtt.NOSUCHTHING" },
  ]);
});

Deno.test("readEnvOverrides() reports variables naming a section, going below a setting, or malformed", () => {
  const { issues } = readEnvOverrides({
    PERCH_LISTENERS__TCP: "x",
    PERCH_SYS__ENABLED__NOW: "1",
    PERCH_MQTT____MAXQOS: "1",
    PERCH_: "1",
  });
  assert.deepEqual(issues, [
    { source: "env PERCH_", message: 'malformed name: expected key names separated by "__"' },
    {
      source: "env PERCH_LISTENERS__TCP",
      message:
        "listeners.tcp is a section, not a setting: set one of its keys (enabled, host, port, nativeHandle, proxyProtocol)",
    },
    {
      source: "env PERCH_MQTT____MAXQOS",
      message: 'malformed name: expected key names separated by "__"',
    },
    {
      source: "env PERCH_SYS__ENABLED__NOW",
      message: "unknown key sys.enabled.NOW: sys.enabled is a setting, not a section",
    },
  ]);
});

Deno.test("readEnvOverrides() reaches the keys of the backbone variants", () => {
  const { overrides, issues } = readEnvOverrides({ PERCH_BACKBONE__KIND: "memory" });
  assert.deepEqual(issues, []);
  assert.deepEqual(overrides, [{
    variable: "PERCH_BACKBONE__KIND",
    path: ["backbone", "kind"],
    value: "memory",
  }]);
});

Deno.test("readEnvOverrides() skips variables whose value is undefined", () => {
  assert.deepEqual(readEnvOverrides({ PERCH_LOG__LEVEL: undefined }), {
    overrides: [],
    issues: [],
  });
});
