import assert from "node:assert/strict";
import {
  factsFromLegacyTrailer,
  factsFromUserProperties,
  MAX_FACT_LENGTH,
  MAX_TRAILER_JSON,
  readAgentFacts,
} from "../../src/domain/agent_facts.ts";
import { trailerOf } from "../helpers/legacy_connect.ts";

const FACTS = {
  host_name: "web-1",
  intranet_ip: "10.0.0.5",
  public_ip: "203.0.113.9",
  platform: "ubuntu",
  arch: "amd64",
  os: "linux",
  agent_version: "1.4.2",
};

Deno.test("legacy trailer: the seven facts of smq's JSON are read", () => {
  assert.deepEqual(factsFromLegacyTrailer(trailerOf(JSON.stringify(FACTS))), {
    facts: FACTS,
    problem: undefined,
  });
});

Deno.test("legacy trailer: 00 00 and no trailer are no facts and no problem", () => {
  assert.deepEqual(factsFromLegacyTrailer(new Uint8Array([0, 0])), {
    facts: undefined,
    problem: undefined,
  });
  assert.deepEqual(factsFromLegacyTrailer(new Uint8Array()), {
    facts: undefined,
    problem: undefined,
  });
});

Deno.test("legacy trailer: truncated, overlong, not JSON or not an object gives no facts", () => {
  const json = JSON.stringify({ os: "linux" });
  const cases: [Uint8Array, RegExp][] = [
    [new Uint8Array([0]), /shorter than its two-byte length/],
    [trailerOf(json).subarray(0, 6), /announces 14 bytes but holds 4/],
    [new Uint8Array([...trailerOf(json), 0x41]), /1 bytes follow/],
    [trailerOf("{not json"), /not UTF-8 JSON/],
    [trailerOf(new Uint8Array([0x7b, 0xff, 0x7d])), /not UTF-8 JSON/],
    [trailerOf("[1,2]"), /not an object/],
    [trailerOf("null"), /not an object/],
    [trailerOf(`"os"`), /not an object/],
    [trailerOf(`{"os":"${"x".repeat(MAX_TRAILER_JSON)}"}`), /exceed 4096/],
  ];
  for (const [trailer, problem] of cases) {
    const reading = factsFromLegacyTrailer(trailer);
    assert.equal(reading.facts, undefined);
    assert.match(reading.problem!, problem);
  }
});

Deno.test("legacy trailer: identity fields are never taken, and are named in the problem", () => {
  const reading = factsFromLegacyTrailer(trailerOf(JSON.stringify({
    id: "someone-else",
    node_id: "other-node",
    user_name: "admin",
    keep_alive: 0,
    os: "linux",
  })));
  assert.deepEqual(reading.facts, { os: "linux" });
  assert.match(reading.problem!, /ignored: id, node_id, user_name, keep_alive/);
});

Deno.test("legacy trailer: wrong types, long values and control characters are dropped one by one", () => {
  const reading = factsFromLegacyTrailer(trailerOf(JSON.stringify({
    host_name: 42,
    os: "x".repeat(MAX_FACT_LENGTH + 1),
    arch: "amd64\n level=error",
    platform: { nested: true },
    agent_version: "2.0",
  })));
  assert.deepEqual(reading.facts, { agent_version: "2.0" });
  assert.match(reading.problem!, /host_name is not a string/);
  assert.match(reading.problem!, /os is longer than 256/);
  assert.match(reading.problem!, /arch contains a control character/);
});

Deno.test("legacy trailer: __proto__ and deep nesting are plain data", () => {
  const hostile = `{"__proto__":{"os":"polluted"},"deep":${"[".repeat(1000)}${"]".repeat(1000)}}`;
  const reading = factsFromLegacyTrailer(trailerOf(hostile));
  assert.equal(reading.facts, undefined);
  assert.equal(({} as Record<string, unknown>).os, undefined);
});

Deno.test("user properties: the first of each fact key, others left alone", () => {
  assert.deepEqual(
    factsFromUserProperties([["os", "linux"], ["os", "windows"], ["team", "a"], ["arch", "arm64"]]),
    { facts: { os: "linux", arch: "arm64" }, problem: undefined },
  );
});

Deno.test("both sources: user properties win, the trailer fills the rest", () => {
  const reading = readAgentFacts(
    [["os", "linux"]],
    trailerOf(JSON.stringify({ os: "windows", arch: "amd64" })),
  );
  assert.deepEqual(reading.facts, { os: "linux", arch: "amd64" });
});
