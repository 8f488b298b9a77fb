import assert from "node:assert/strict";
import {
  addressMatcher,
  isAddressOrRange,
  isIpAddress,
  normalizeAddress,
} from "../../src/util/address_match.ts";

Deno.test("addressMatcher() matches single addresses and IPv4/IPv6 CIDR ranges", () => {
  const trusted = addressMatcher(["10.0.0.0/8", "192.168.1.7", "fd00::/8", "::1"]);
  assert.ok(trusted("10.200.3.4"));
  assert.ok(trusted("192.168.1.7"));
  assert.ok(!trusted("192.168.1.8"));
  assert.ok(trusted("fd12:3456::1"));
  assert.ok(trusted("::1"));
  assert.ok(!trusted("2001:db8::1"));
  assert.ok(!trusted("11.0.0.1"));
});

Deno.test("addressMatcher() matches IPv4-mapped IPv6 addresses against IPv4 entries", () => {
  const trusted = addressMatcher(["10.0.0.0/8", "::ffff:172.16.0.0/112"]);
  assert.ok(trusted("::ffff:10.1.2.3"));
  assert.ok(trusted("172.16.5.5"));
  assert.ok(!trusted("172.17.0.1"));
});

Deno.test("addressMatcher() never matches text that is not an address", () => {
  const trusted = addressMatcher(["0.0.0.0/0", "::/0"]);
  assert.ok(!trusted("localhost"));
  assert.ok(!trusted(""));
  assert.ok(!trusted("0x7f.1")); // legacy IPv4 forms are not addresses here
});

Deno.test("addressMatcher() throws a TypeError naming a bad entry", () => {
  assert.throws(() => addressMatcher(["10.0.0.0/33"]), {
    name: "TypeError",
    message: /"10.0.0.0\/33"/,
  });
  assert.throws(() => addressMatcher(["example.com"]), {
    name: "TypeError",
    message: /"example.com"/,
  });
});

Deno.test("isAddressOrRange() and isIpAddress() accept only dotted quads and IPv6", () => {
  assert.ok(isAddressOrRange("10.0.0.0/8"));
  assert.ok(isAddressOrRange("::1"));
  assert.ok(!isAddressOrRange("10.0.0/8"));
  assert.ok(!isAddressOrRange("1.2.3.4/40"));
  assert.ok(isIpAddress("203.0.113.9"));
  assert.ok(!isIpAddress("203.0.113"));
});

Deno.test("normalizeAddress() unmaps IPv4-mapped IPv6 and compresses IPv6", () => {
  assert.equal(normalizeAddress("::ffff:10.0.0.1"), "10.0.0.1");
  assert.equal(normalizeAddress("2001:0db8:0000:0000:0000:0000:0000:0001"), "2001:db8::1");
  assert.equal(normalizeAddress("not an ip"), "not an ip");
});
