import assert from "node:assert/strict";
import {
  ConfigError,
  describeGiven,
  formatIssue,
  isSecretConfigKey,
} from "../../src/config/errors.ts";

Deno.test("formatIssue() writes the key path, the problem and the source", () => {
  assert.equal(
    formatIssue({
      path: "listeners.tcp.port",
      message: 'expected an integer from 0 to 65535, got "abc"',
    }),
    'listeners.tcp.port: expected an integer from 0 to 65535, got "abc"',
  );
  assert.equal(
    formatIssue({
      path: "mqtt.maxQoS",
      message: 'unknown key (did you mean "maxQos"?)',
      source: "perch.yaml:7:3",
    }),
    'mqtt.maxQoS: unknown key (did you mean "maxQos"?) (perch.yaml:7:3)',
  );
  assert.equal(
    formatIssue({ message: "invalid YAML: Map keys must be unique", source: "perch.yaml:2:1" }),
    "perch.yaml:2:1: invalid YAML: Map keys must be unique",
  );
  assert.equal(formatIssue({ message: "something" }), "something");
});

Deno.test("ConfigError lists every problem, one per line", () => {
  const error = new ConfigError([
    {
      path: "listeners.tcp.port",
      message: 'expected an integer from 0 to 65535, got "abc"',
      source: "env PERCH_LISTENERS__TCP__PORT",
    },
    { path: "listeners.tls.cert", message: "required when listeners.tls.enabled is true" },
  ]);
  assert.ok(error instanceof Error);
  assert.equal(error.name, "ConfigError");
  assert.equal(error.issues.length, 2);
  assert.equal(
    error.message,
    [
      "Invalid configuration: 2 problems",
      '  listeners.tcp.port: expected an integer from 0 to 65535, got "abc" (env PERCH_LISTENERS__TCP__PORT)',
      "  listeners.tls.cert: required when listeners.tls.enabled is true",
    ].join("\n"),
  );
  const cause = new Error("EACCES");
  const single = new ConfigError([{
    message: "cannot read the file: EACCES",
    source: "perch.yaml",
  }], { cause });
  assert.equal(
    single.message,
    "Invalid configuration: 1 problem\n  perch.yaml: cannot read the file: EACCES",
  );
  assert.equal(single.cause, cause);
});

Deno.test("describeGiven() describes values briefly", () => {
  assert.equal(describeGiven("abc", "port"), '"abc"');
  assert.equal(describeGiven("x".repeat(100), "id"), JSON.stringify(`${"x".repeat(60)}...`));
  assert.equal(describeGiven(70000, "port"), "70000");
  assert.equal(describeGiven(true, "port"), "true");
  assert.equal(describeGiven(null, "port"), "null");
  assert.equal(describeGiven(undefined, "kind"), "nothing");
  assert.equal(describeGiven([1], "tcp"), "a list");
  assert.equal(describeGiven({ a: 1 }, "tcp"), "a mapping");
  assert.equal(describeGiven({ a: 1 }, undefined), "a mapping");
});

Deno.test("describeGiven() never shows a secret or key material", () => {
  for (
    const key of [
      "password",
      "adminToken",
      "secret",
      "jwt",
      "authorization",
      "key",
      "privateKey",
      "apiKey",
    ]
  ) {
    assert.equal(describeGiven("hunter2", key), "[redacted]", key);
    assert.ok(isSecretConfigKey(key), key);
  }
  for (const key of ["cert", "ca", "port", "requestClientCert", "maxQos"]) {
    assert.equal(isSecretConfigKey(key), false, key);
  }
});
