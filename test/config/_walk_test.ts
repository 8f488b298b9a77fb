import assert from "node:assert/strict";
import { z } from "zod";
import {
  isTextLeaf,
  looseKey,
  schemaAt,
  sectionKeys,
  suggestKey,
  unwrap,
} from "../../src/config/_walk.ts";
import { configSchema } from "../../src/config/schema.ts";

Deno.test("unwrap() strips wrappers and keeps the metadata and the default", () => {
  const port = schemaAt(configSchema, ["listeners", "tcp", "port"])!;
  const { inner, meta, defaulted } = unwrap(port);
  assert.ok(inner instanceof z.ZodNumber);
  assert.equal(meta.typeLabel, "integer 0..65535");
  assert.equal(defaulted?.def.defaultValue, 1883);
  const cert = unwrap(schemaAt(configSchema, ["listeners", "tls", "cert"])!);
  assert.ok(cert.inner instanceof z.ZodString);
  assert.equal(cert.defaulted, undefined);
});

Deno.test("sectionKeys() lists object keys, merges union variants, and is undefined for leaves", () => {
  assert.deepEqual(Object.keys(sectionKeys(configSchema)!), [
    "node",
    "log",
    "listeners",
    "mqtt",
    "limits",
    "auth",
    "acl",
    "admin",
    "retained",
    "sys",
    "backbone",
    "notify",
    "agent",
    "bridge",
    "memory",
    "shutdown",
  ]);
  assert.deepEqual(Object.keys(sectionKeys(schemaAt(configSchema, ["backbone"])!)!), [
    "kind",
    "timeout",
    "servers",
    "user",
    "password",
    "token",
    "nkeySeedFile",
    "credsFile",
    "tls",
    "prefix",
    "replicas",
    "storage",
    "leaseTimeout",
    "ackWait",
    "path",
    "sync",
    "syncWindow",
  ]);
  assert.equal(sectionKeys(schemaAt(configSchema, ["log", "level"])!), undefined);
});

Deno.test("schemaAt() finds keys by path and is undefined for unknown paths", () => {
  assert.equal(schemaAt(configSchema, []), configSchema);
  assert.ok(schemaAt(configSchema, ["mqtt", "maxQos"]));
  assert.equal(schemaAt(configSchema, ["mqtt", "maxQoS"]), undefined);
  assert.equal(schemaAt(configSchema, ["log", "level", "x"]), undefined);
  assert.equal(schemaAt(configSchema, ["toString"]), undefined);
});

Deno.test("isTextLeaf() is true only for keys that take text", () => {
  const leaf = (...path: string[]) => isTextLeaf(schemaAt(configSchema, path)!);
  assert.ok(leaf("node", "id"));
  assert.ok(leaf("log", "level"));
  assert.ok(leaf("listeners", "tls", "cert"));
  assert.ok(leaf("backbone", "kind"));
  assert.equal(leaf("listeners", "tcp", "port"), false);
  assert.equal(leaf("mqtt", "maxQos"), false);
  assert.equal(leaf("mqtt", "maxPacketSize"), false);
  assert.equal(leaf("sys", "enabled"), false);
});

Deno.test("looseKey() ignores case and underscores", () => {
  assert.equal(looseKey("MAX_PACKET_SIZE"), "maxpacketsize");
  assert.equal(looseKey("maxPacketSize"), "maxpacketsize");
});

Deno.test("suggestKey() finds the key a typo meant, or nothing", () => {
  const keys = ["maxQos", "maxInflight", "port", "host", "receiveMaximum"];
  assert.equal(suggestKey("maxQoS", keys), "maxQos");
  assert.equal(suggestKey("max_qos", keys), "maxQos");
  assert.equal(suggestKey("prot", keys), "port");
  assert.equal(suggestKey("maxInflght", keys), "maxInflight");
  assert.equal(suggestKey("recieveMaximum", keys), "receiveMaximum");
  assert.equal(suggestKey("bogus", keys), undefined);
  assert.equal(suggestKey("ab", keys), undefined);
});
