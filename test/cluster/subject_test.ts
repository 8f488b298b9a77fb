/**
 * `cluster/subject.ts`: MQTT topics and filters as NATS subjects. Tables for the scheme's cases,
 * round trips and canonical decoding over random topics built from every character class that
 * needs care, the length limits, and the property the cluster relies on: NATS wildcard matching
 * of the mapped subjects agrees with the broker's own `topicMatchesFilter` for every pair.
 * (`subject_nats_matching_test.ts` checks the same against a real nats-server.)
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  DEFAULT_MAX_SUBJECT_BYTES,
  MAX_SUBJECT_BYTES,
  SubjectMapping,
  SubjectTooLongError,
} from "../../cluster/subject.ts";
import { topicMatchesFilter } from "../../src/topic/matches.ts";
import { MATCH_CASES, prng } from "../topic/_reference.ts";
import { adversarialFilter, adversarialTopic, natsSubjectMatches } from "./_subjects.ts";

const mapping = new SubjectMapping("perch.m");

/** Whether `subject` is a subject nats-server accepts: tokens non-empty, no whitespace. */
function isValidNatsSubject(subject: string): boolean {
  const tokens = subject.split(".");
  const gt = tokens.indexOf(">");
  return tokens.every((t) => t.length > 0 && !/[ \t\n\f\r]/.test(t)) &&
    (gt === -1 || gt === tokens.length - 1);
}

Deno.test("subject mapping: topics become one token per level, with reserved characters and empty levels escaped", () => {
  const cases: [string, string][] = [
    ["sport/tennis", "perch.m.t.sport.tennis"],
    ["a.b/c d", "perch.m.t.a%2Eb.c%20d"],
    ["*/>", "perch.m.t.%2A.%3E"],
    ["a*b/x>y", "perch.m.t.a%2Ab.x%3Ey"],
    ["tab\there", "perch.m.t.tab%09here"],
    ["\n\r\f\v\x01\x7f", "perch.m.t.%0A%0D%0C%0B%01%7F"],
    ["/", "perch.m.t.%.%"],
    ["/a", "perch.m.t.%.a"],
    ["a/", "perch.m.t.a.%"],
    ["a//b", "perch.m.t.a.%.b"],
    ["100%", "perch.m.t.100%25"],
    ["%2E/%", "perch.m.t.%252E.%25"],
    ["température/°C", "perch.m.t.température.°C"],
    ["日本/😀", "perch.m.t.日本.😀"],
    ["a/$b", "perch.m.t.a.$b"],
    ["$SYS/broker/uptime", "perch.m.s.$SYS.broker.uptime"],
    ["$", "perch.m.s.$"],
    ["$/", "perch.m.s.$.%"],
    ["-_~!\"'()[]{}=:;,<?@&|\\^`", "perch.m.t.-_~!\"'()[]{}=:;,<?@&|\\^`"],
  ];
  for (const [topic, subject] of cases) {
    assert.equal(mapping.topicToSubject(topic), subject, JSON.stringify(topic));
    assert.equal(mapping.subjectToTopic(subject), topic, subject);
    assert.ok(isValidNatsSubject(subject), subject);
  }
});

Deno.test("subject mapping: filters map + to * and # to >, and a/# also to a itself", () => {
  const cases: [string, string[]][] = [
    ["#", ["perch.m.t.>"]],
    ["+", ["perch.m.t.*"]],
    ["sport/tennis", ["perch.m.t.sport.tennis"]],
    ["sport/#", ["perch.m.t.sport", "perch.m.t.sport.>"]],
    ["+/+/#", ["perch.m.t.*.*", "perch.m.t.*.*.>"]],
    ["+/tennis/+", ["perch.m.t.*.tennis.*"]],
    ["/#", ["perch.m.t.%", "perch.m.t.%.>"]],
    ["+/", ["perch.m.t.*.%"]],
    ["a.b/+", ["perch.m.t.a%2Eb.*"]],
    ["*/>", ["perch.m.t.%2A.%3E"]],
    ["$SYS/#", ["perch.m.s.$SYS", "perch.m.s.$SYS.>"]],
    ["$SYS/+/uptime", ["perch.m.s.$SYS.*.uptime"]],
    ["+/$x", ["perch.m.t.*.$x"]],
  ];
  for (const [filter, subjects] of cases) {
    const mapped = mapping.filterToSubjects(filter);
    assert.deepEqual(mapped, subjects, filter);
    assert.equal(mapping.subjectToFilter(subjects[subjects.length - 1]), filter);
    for (const subject of mapped) assert.ok(isValidNatsSubject(subject), subject);
  }
  // The parent-level subject of a/# reads back as the parent.
  assert.equal(mapping.subjectToFilter("perch.m.t.sport"), "sport");
});

Deno.test("subject mapping: $ topics are never matched by a filter starting with a wildcard [MQTT-4.7.2-1]", () => {
  const sys = mapping.topicToSubject("$SYS/broker/uptime");
  for (const filter of ["#", "+/broker/uptime", "+/#", "+/+/+"]) {
    assert.equal(natsSubjectMatches(sys, mapping.filterToSubjects(filter)), false, filter);
  }
  for (const filter of ["$SYS/#", "$SYS/+/uptime", "$SYS/broker/uptime"]) {
    assert.equal(natsSubjectMatches(sys, mapping.filterToSubjects(filter)), true, filter);
  }
  // A $ in a later level is an ordinary character.
  assert.equal(
    natsSubjectMatches(mapping.topicToSubject("a/$b"), mapping.filterToSubjects("#")),
    true,
  );
});

Deno.test("subject mapping: NATS matching of the mapped subjects is MQTT matching, on the spec's examples", () => {
  for (const cases of Object.values(MATCH_CASES)) {
    for (const [filter, matches, misses] of cases) {
      const subjects = mapping.filterToSubjects(filter);
      for (const topic of matches) {
        assert.ok(
          natsSubjectMatches(mapping.topicToSubject(topic), subjects),
          `${filter} ${topic}`,
        );
      }
      for (const topic of misses) {
        assert.ok(
          !natsSubjectMatches(mapping.topicToSubject(topic), subjects),
          `${filter} ${topic}`,
        );
      }
    }
  }
});

Deno.test("subject mapping: NATS matching of the mapped subjects is topicMatchesFilter, on random pairs", () => {
  const random = prng(0x5eb1ec7);
  let matched = 0;
  const pairs = 200_000;
  for (let i = 0; i < pairs; i++) {
    const topic = adversarialTopic(random);
    const filter = adversarialFilter(random, topic);
    const expected = topicMatchesFilter(topic, filter);
    const actual = natsSubjectMatches(
      mapping.topicToSubject(topic),
      mapping.filterToSubjects(filter),
    );
    assert.equal(actual, expected, `${JSON.stringify(filter)} ${JSON.stringify(topic)}`);
    if (expected) matched++;
  }
  // Not a vacuous agreement: a good share of the pairs match.
  assert.ok(matched > pairs / 10, `only ${matched} of ${pairs} pairs match`);
});

Deno.test("subject mapping: every topic and filter round-trips, and subjects are valid NATS subjects", () => {
  const random = prng(0x70b1c);
  for (let i = 0; i < 50_000; i++) {
    const topic = adversarialTopic(random);
    const subject = mapping.topicToSubject(topic);
    assert.ok(isValidNatsSubject(subject) && !/[*>]/.test(subject), subject);
    assert.equal(mapping.subjectToTopic(subject), topic);
    const filter = adversarialFilter(random, topic);
    const subjects = mapping.filterToSubjects(filter);
    for (const s of subjects) assert.ok(isValidNatsSubject(s), s);
    assert.equal(mapping.subjectToFilter(subjects[subjects.length - 1]), filter);
  }
});

Deno.test("subject mapping: decoding accepts only what encoding writes", () => {
  const notMapped = [
    "other.m.t.a",
    "perch.m",
    "perch.m.t",
    "perch.m.x.a",
    "perch.m.t.a%2e",
    "perch.m.t.%41",
    "perch.m.t.a%",
    "perch.m.t.a%2",
    "perch.m.t.%00",
    "perch.m.t.%%",
    "perch.m.t.a*b",
    "perch.m.t.a+b",
    "perch.m.t.+",
    "perch.m.t.#",
    "perch.m.t.a>b",
    "perch.m.t.a b",
    "perch.m.t.a..b",
    "perch.m.t.a.",
    "perch.m.t.$SYS",
    "perch.m.s.a",
    "perch.m.t.*",
    "perch.m.t.a.>",
  ];
  for (const subject of notMapped) {
    assert.throws(() => mapping.subjectToTopic(subject), TypeError, subject);
  }
  const notFilters = [
    "perch.m.t.>.a",
    "perch.m.s.*",
    "perch.m.s.>",
    "perch.m.t.a%2e.*",
    "perch.m.t.#",
  ];
  for (const subject of notFilters) {
    assert.throws(() => mapping.subjectToFilter(subject), TypeError, subject);
  }
});

Deno.test("subject mapping: invalid topic names, filters and prefixes are refused", () => {
  for (const topic of ["", "a/+", "#", "a/b#", "a\0b"]) {
    assert.throws(() => mapping.topicToSubject(topic), TypeError, JSON.stringify(topic));
  }
  for (const filter of ["", "a/#/b", "a+", "a/b#", "##", "#/", "a\0"]) {
    assert.throws(() => mapping.filterToSubjects(filter), TypeError, JSON.stringify(filter));
  }
  for (const prefix of ["", "a..b", "a.", "a.*", "a.>", "a b", "a\tb"]) {
    assert.throws(() => new SubjectMapping(prefix), TypeError, JSON.stringify(prefix));
  }
  for (const max of [0, 1.5, MAX_SUBJECT_BYTES + 1]) {
    assert.throws(() => new SubjectMapping("perch.m", max), RangeError, String(max));
  }
});

Deno.test("subject mapping: subjects are limited to 4000 bytes by default, 65535 at most", () => {
  assert.equal(mapping.maxBytes, DEFAULT_MAX_SUBJECT_BYTES);
  const room = DEFAULT_MAX_SUBJECT_BYTES - "perch.m.t.".length;
  assert.equal(mapping.topicToSubject("x".repeat(room)).length, DEFAULT_MAX_SUBJECT_BYTES);
  // Counted in UTF-8 bytes, after escaping.
  for (const topic of ["x".repeat(room + 1), "é".repeat(room / 2 + 1), ".".repeat(room / 3 + 1)]) {
    assert.throws(
      () => mapping.topicToSubject(topic),
      (err) =>
        err instanceof SubjectTooLongError && err.bytes > DEFAULT_MAX_SUBJECT_BYTES &&
        err.maxBytes === DEFAULT_MAX_SUBJECT_BYTES,
    );
  }
  assert.throws(() => mapping.filterToSubjects(`${"x".repeat(room)}/#`), SubjectTooLongError);

  const wide = new SubjectMapping("perch.m", MAX_SUBJECT_BYTES);
  assert.equal(wide.topicToSubject("x".repeat(65_000)).length, 65_000 + "perch.m.t.".length);
  // MQTT allows 65535-byte topics; no mapping can carry the longest of them.
  assert.throws(() => wide.topicToSubject("x".repeat(65_535)), SubjectTooLongError);
});
