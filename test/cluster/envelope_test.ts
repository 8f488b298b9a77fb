/**
 * The envelope a message crosses NATS in: every field round trips, with repeated and changing
 * topics, origins and senders (the encoder and decoder keep the last ones), multi-byte text, long
 * topics and binary properties.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  decodeEnvelope,
  decodeEnvelopes,
  encodeBatch,
  encodeEnvelope,
  envelopeCount,
} from "../../cluster/envelope.ts";
import type { Message } from "../../src/mod.ts";

const encoder = new TextEncoder();

Deno.test("envelope: every field round trips, for repeated and changing topics, origins and senders", () => {
  const topics = ["a/b", "ü/€/𝄞", "x".repeat(70_000), "a/b", "a/c"];
  const origins = ["", "pub-1", "ö", "pub-1"];
  const senders = ["sender-ä", "sender-ä", "other"];
  let seq = 0;
  for (const topic of topics) {
    for (const origin of origins) {
      for (const id of senders) {
        const full: Message = {
          topic,
          payload: encoder.encode(`payload ${topic.length} ${origin}`),
          qos: 2,
          retain: true,
          properties: {
            contentType: "text/plain",
            userProperties: [["k", "v"]],
            correlationData: new Uint8Array([1, 2, 3]),
          },
          expiresAt: 1_700_000_000_000.5,
          origin,
        };
        const bare: Message = {
          ...full,
          properties: undefined,
          expiresAt: 0,
          retain: false,
          qos: 1,
        };
        for (const message of [full, bare]) {
          const sender = { id, seq: ++seq * 1_000_003 };
          const decoded = decodeEnvelope(encodeEnvelope(message, sender));
          assert.deepEqual(decoded.message, message);
          assert.deepEqual(decoded.sender, sender);
        }
      }
    }
  }
});

Deno.test("envelope: a decoded payload is a copy, not a view of the bytes it came in", () => {
  const bytes = encodeEnvelope(
    {
      topic: "t",
      payload: encoder.encode("abc"),
      qos: 1,
      retain: false,
      properties: undefined,
      expiresAt: 0,
      origin: "o",
    },
    { id: "s", seq: 1 },
  );
  const decoded = decodeEnvelope(bytes);
  bytes.fill(0);
  assert.deepEqual(decoded.message.payload, encoder.encode("abc"));
  assert.equal(decoded.message.topic, "t");
});

Deno.test("envelope: truncated or foreign bytes are refused", () => {
  const bytes = encodeEnvelope(
    {
      topic: "topic",
      payload: new Uint8Array(0),
      qos: 1,
      retain: false,
      properties: undefined,
      expiresAt: 0,
      origin: "",
    },
    { id: "s", seq: 1 },
  );
  assert.throws(() => decodeEnvelope(bytes.subarray(0, 27)), TypeError);
  assert.throws(() => decodeEnvelope(new Uint8Array(30)), TypeError);
});

Deno.test("envelope: a batch holds several envelopes in order, a single one stays as it was, a cut batch is refused; each is counted without decoding", () => {
  const messages: Message[] = ["a", "b/c", "ü"].map((topic, i) => ({
    topic,
    payload: encoder.encode(`m${i}`),
    qos: 0,
    retain: false,
    properties: undefined,
    expiresAt: 0,
    origin: `p${i}`,
  }));
  const envelopes = messages.map((message, i) => encodeEnvelope(message, { id: "s", seq: i + 1 }));
  const total = envelopes.reduce((sum, envelope) => sum + envelope.length, 0);
  const batch = encodeBatch(envelopes, total);
  const decoded = decodeEnvelopes(batch);
  assert.deepEqual(decoded.map((envelope) => envelope.message), messages);
  assert.deepEqual(decoded.map((envelope) => envelope.sender.seq), [1, 2, 3]);
  assert.deepEqual(decodeEnvelopes(envelopes[1]).map((envelope) => envelope.message), [
    messages[1],
  ]);
  assert.throws(() => decodeEnvelopes(batch.subarray(0, batch.length - 1)), TypeError);
  assert.throws(() => decodeEnvelopes(batch.subarray(0, 3)), TypeError);
  assert.equal(envelopeCount(batch), 3);
  assert.equal(envelopeCount(envelopes[0]), 1);
  assert.equal(envelopeCount(encodeBatch(envelopes.slice(1), total - envelopes[0].length)), 2);
});
