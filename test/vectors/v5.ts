/**
 * MQTT 5.0 vectors. Spec tags are MQTT 5.0 numbers; where the specification states a rule
 * without a number, the section is given.
 *
 * Properties inside a vector appear in identifier order, the order the encoder writes them in.
 *
 * @module
 */

import {
  ack,
  auth,
  bin,
  bytes,
  connack,
  connect,
  disconnect,
  frame,
  type PacketCase,
  props,
  publish,
  str,
  suback,
  subscribe,
  subscription,
  u16,
  u32,
  unsuback,
  unsubscribe,
  utf8,
} from "./mod.ts";

const MALFORMED = 0x81;
const PROTOCOL_ERROR = 0x82;
const UNSUPPORTED_PROTOCOL_VERSION = 0x84;
const TOPIC_ALIAS_INVALID = 0x94;

/** The CONNECT header fields up to the properties: "MQTT", level 5, the flags, keep alive 60. */
function connectHead(flags: number): number[] {
  return [...str("MQTT"), 0x05, flags, ...u16(60)];
}

/** Valid packets, in packet type order. */
export const v5Valid: PacketCase[] = [
  {
    id: "v5-connect-minimal",
    desc: "CONNECT with clean start, no properties and a client identifier",
    version: 5,
    bytes: frame(
      0x10, // CONNECT
      str("MQTT"), // protocol name
      0x05, // protocol version 5
      0b0000_0010, // connect flags: clean start
      u16(60), // keep alive
      0x00, // property length 0
      str("c"), // client identifier
    ),
    packet: connect({ protocolVersion: 5 }),
    spec: "[MQTT-2.2.2-1]",
  },
  {
    id: "v5-connect-all-properties",
    desc:
      "CONNECT with every CONNECT property, a will with every will property, user name, password",
    version: 5,
    bytes: frame(
      0x10,
      str("MQTT"),
      0x05,
      0b1110_1100, // user name, password, will retain, will QoS 1, will, no clean start
      u16(120),
      props(
        [0x11, ...u32(3600)], // session expiry interval
        [0x15, ...str("SCRAM-SHA-1")], // authentication method
        [0x16, ...bin([1, 2, 3])], // authentication data
        [0x17, 0x00], // request problem information
        [0x19, 0x01], // request response information
        [0x21, ...u16(20)], // receive maximum
        [0x22, ...u16(10)], // topic alias maximum
        [0x26, ...str("a"), ...str("1")], // user property
        [0x26, ...str("a"), ...str("2")], // user property, same name again
        [0x27, ...u32(1_048_576)], // maximum packet size
      ),
      str("device-42"), // client identifier
      props(
        [0x01, 0x01], // payload format indicator: UTF-8
        [0x02, ...u32(60)], // message expiry interval
        [0x03, ...str("text/plain")], // content type
        [0x08, ...str("resp/t")], // response topic
        [0x09, ...bin([9, 9])], // correlation data
        [0x18, ...u32(5)], // will delay interval
        [0x26, ...str("k"), ...str("v")], // user property
      ),
      str("status/device-42"), // will topic
      bin("offline"), // will payload
      str("user"), // user name
      bin("pass"), // password
    ),
    packet: connect({
      protocolVersion: 5,
      cleanStart: false,
      keepAlive: 120,
      clientId: "device-42",
      username: "user",
      password: utf8("pass"),
      will: {
        topic: "status/device-42",
        payload: utf8("offline"),
        qos: 1,
        retain: true,
        properties: {
          payloadFormatIndicator: 1,
          messageExpiryInterval: 60,
          contentType: "text/plain",
          responseTopic: "resp/t",
          correlationData: new Uint8Array([9, 9]),
          willDelayInterval: 5,
          userProperties: [["k", "v"]],
        },
      },
      properties: {
        sessionExpiryInterval: 3600,
        authenticationMethod: "SCRAM-SHA-1",
        authenticationData: new Uint8Array([1, 2, 3]),
        requestProblemInformation: 0,
        requestResponseInformation: 1,
        receiveMaximum: 20,
        topicAliasMaximum: 10,
        userProperties: [["a", "1"], ["a", "2"]],
        maximumPacketSize: 1_048_576,
      },
    }),
    spec: "[MQTT-3.1.3-1]",
  },
  {
    id: "v5-connect-password-without-username",
    desc: "CONNECT with a password and no user name, which MQTT 5 allows",
    version: 5,
    bytes: frame(0x10, connectHead(0b0100_0010), 0x00, str("c"), bin("token")),
    packet: connect({ protocolVersion: 5, password: utf8("token") }),
    spec: "section 3.1.2.9",
  },
  {
    id: "v5-connect-empty-client-id-persistent",
    desc: "CONNECT with a zero-length client identifier and clean start 0 (the server assigns one)",
    version: 5,
    bytes: frame(0x10, connectHead(0b0000_0000), 0x00, str("")),
    packet: connect({ protocolVersion: 5, cleanStart: false, clientId: "" }),
    spec: "[MQTT-3.1.3-6]",
  },
  {
    id: "v5-connack-minimal",
    desc: "CONNACK Success without properties",
    version: 5,
    bytes: frame(0x20, 0x00, 0x00, 0x00),
    packet: connack({ properties: undefined }),
  },
  {
    id: "v5-connack-all-properties",
    desc: "CONNACK with every CONNACK property",
    version: 5,
    bytes: frame(
      0x20,
      0x01, // session present
      0x00, // reason code: Success
      props(
        [0x11, ...u32(0)], // session expiry interval
        [0x12, ...str("auto-1")], // assigned client identifier
        [0x13, ...u16(30)], // server keep alive
        [0x15, ...str("SCRAM")], // authentication method
        [0x16, ...bin([7])], // authentication data
        [0x1a, ...str("info")], // response information
        [0x1c, ...str("other:1883")], // server reference
        [0x1f, ...str("ok")], // reason string
        [0x21, ...u16(100)], // receive maximum
        [0x22, ...u16(5)], // topic alias maximum
        [0x24, 0x01], // maximum QoS
        [0x25, 0x01], // retain available
        [0x26, ...str("x"), ...str("y")], // user property
        [0x27, ...u32(65_536)], // maximum packet size
        [0x28, 0x01], // wildcard subscription available
        [0x29, 0x00], // subscription identifiers available
        [0x2a, 0x01], // shared subscription available
      ),
    ),
    packet: connack({
      sessionPresent: true,
      properties: {
        sessionExpiryInterval: 0,
        assignedClientIdentifier: "auto-1",
        serverKeepAlive: 30,
        authenticationMethod: "SCRAM",
        authenticationData: new Uint8Array([7]),
        responseInformation: "info",
        serverReference: "other:1883",
        reasonString: "ok",
        receiveMaximum: 100,
        topicAliasMaximum: 5,
        maximumQos: 1,
        retainAvailable: 1,
        userProperties: [["x", "y"]],
        maximumPacketSize: 65_536,
        wildcardSubscriptionAvailable: 1,
        subscriptionIdentifiersAvailable: 0,
        sharedSubscriptionAvailable: 1,
      },
    }),
  },
  {
    id: "v5-connack-refused",
    desc: "CONNACK 0x86 Bad User Name or Password",
    version: 5,
    bytes: frame(0x20, 0x00, 0x86, 0x00),
    packet: connack({ reasonCode: 0x86 }),
  },
  {
    id: "v5-publish-qos0",
    desc: "PUBLISH QoS 0 without properties",
    version: 5,
    bytes: frame(0x30, str("a/b"), 0x00, "hello"),
    packet: publish({ payload: utf8("hello") }),
  },
  {
    id: "v5-publish-all-client-properties",
    desc: "PUBLISH QoS 1 with every property a client may send",
    version: 5,
    bytes: frame(
      0x32, // PUBLISH QoS 1
      str("sensors/1"), // topic name
      u16(7), // packet identifier
      props(
        [0x01, 0x01], // payload format indicator: UTF-8
        [0x02, ...u32(120)], // message expiry interval
        [0x03, ...str("application/json")], // content type
        [0x08, ...str("reply/1")], // response topic
        [0x09, ...bin("req-7")], // correlation data
        [0x23, ...u16(3)], // topic alias
        [0x26, ...str("trace"), ...str("abc")], // user property
      ),
      '{"v":1}', // payload
    ),
    packet: publish({
      qos: 1,
      topic: "sensors/1",
      packetId: 7,
      properties: {
        payloadFormatIndicator: 1,
        messageExpiryInterval: 120,
        contentType: "application/json",
        responseTopic: "reply/1",
        correlationData: utf8("req-7"),
        topicAlias: 3,
        userProperties: [["trace", "abc"]],
      },
      payload: utf8('{"v":1}'),
    }),
  },
  {
    id: "v5-publish-topic-alias-only",
    desc: "PUBLISH with an empty topic name and a topic alias",
    version: 5,
    bytes: frame(0x30, str(""), props([0x23, ...u16(3)]), "x"),
    packet: publish({ topic: "", properties: { topicAlias: 3 }, payload: utf8("x") }),
    spec: "section 3.3.2.1",
  },
  {
    id: "v5-publish-retain-qos2-empty",
    desc: "PUBLISH QoS 2 with RETAIN and an empty payload (deletes a retained message)",
    version: 5,
    bytes: frame(0x35, str("a/b"), u16(300), 0x00),
    packet: publish({ qos: 2, retain: true, packetId: 300 }),
  },
  {
    id: "v5-puback-success",
    desc: "PUBACK Success without properties: reason code omitted, remaining length 2",
    version: 5,
    bytes: frame(0x40, u16(1)),
    packet: ack(4, 1),
    spec: "section 3.4.2.1",
  },
  {
    id: "v5-puback-reason-only",
    desc: "PUBACK 0x10 No matching subscribers without properties: remaining length 3",
    version: 5,
    bytes: frame(0x40, u16(1), 0x10),
    packet: ack(4, 1, 0x10),
    spec: "section 3.4.2.2.1",
  },
  {
    id: "v5-puback-properties",
    desc: "PUBACK 0x80 with a reason string and a user property",
    version: 5,
    bytes: frame(
      0x40,
      u16(1),
      0x80, // Unspecified error
      props([0x1f, ...str("failed")], [0x26, ...str("k"), ...str("v")]),
    ),
    packet: ack(4, 1, 0x80, { reasonString: "failed", userProperties: [["k", "v"]] }),
  },
  {
    id: "v5-puback-explicit-success",
    desc: "PUBACK with an explicit Success reason code (not the shortest form)",
    version: 5,
    bytes: frame(0x40, u16(1), 0x00),
    packet: ack(4, 1),
    reencoded: frame(0x40, u16(1)),
    spec: "section 3.4.2.1",
  },
  {
    id: "v5-puback-empty-properties",
    desc: "PUBACK with Success and a property length of 0 (not the shortest form)",
    version: 5,
    bytes: frame(0x40, u16(1), 0x00, 0x00),
    packet: ack(4, 1),
    reencoded: frame(0x40, u16(1)),
  },
  {
    id: "v5-pubrec-packet-id-in-use",
    desc: "PUBREC 0x91 Packet Identifier in use",
    version: 5,
    bytes: frame(0x50, u16(2), 0x91),
    packet: ack(5, 2, 0x91),
  },
  {
    id: "v5-pubrel-not-found",
    desc: "PUBREL 0x92 Packet Identifier not found with a reason string",
    version: 5,
    bytes: frame(0x62, u16(2), 0x92, props([0x1f, ...str("unknown")])),
    packet: ack(6, 2, 0x92, { reasonString: "unknown" }),
    spec: "[MQTT-3.6.1-1]",
  },
  {
    id: "v5-pubcomp-success",
    desc: "PUBCOMP Success",
    version: 5,
    bytes: frame(0x70, u16(2)),
    packet: ack(7, 2),
  },
  {
    id: "v5-subscribe-minimal",
    desc: "SUBSCRIBE with one filter and no properties",
    version: 5,
    bytes: frame(0x82, u16(1), 0x00, str("a"), 0x00),
    packet: subscribe(1, [subscription("a", 0)]),
  },
  {
    id: "v5-subscribe-options",
    desc: "SUBSCRIBE with a subscription identifier, a user property and every option",
    version: 5,
    bytes: frame(
      0x82,
      u16(5),
      props([0x0b, 42], [0x26, ...str("k"), ...str("v")]), // subscription identifier 42
      str("a/#"),
      0b0010_1101, // retain handling 2, retain as published, no local, QoS 1
      str("$share/g/b"),
      0b0000_0010, // QoS 2
    ),
    packet: subscribe(5, [
      subscription("a/#", 1, { noLocal: true, retainAsPublished: true, retainHandling: 2 }),
      subscription("$share/g/b", 2),
    ], { subscriptionIdentifiers: [42], userProperties: [["k", "v"]] }),
  },
  {
    id: "v5-suback",
    desc: "SUBACK with a reason string, one grant and one refusal",
    version: 5,
    bytes: frame(0x90, u16(5), props([0x1f, ...str("partial")]), 0x01, 0x87),
    packet: suback(5, [0x01, 0x87], { reasonString: "partial" }),
  },
  {
    id: "v5-unsubscribe",
    desc: "UNSUBSCRIBE with a user property",
    version: 5,
    bytes: frame(0xa2, u16(6), props([0x26, ...str("k"), ...str("v")]), str("a/#"), str("b")),
    packet: unsubscribe(6, ["a/#", "b"], { userProperties: [["k", "v"]] }),
  },
  {
    id: "v5-unsuback",
    desc: "UNSUBACK with one reason code per filter",
    version: 5,
    bytes: frame(0xb0, u16(6), 0x00, 0x00, 0x11),
    packet: unsuback(6, [0x00, 0x11]),
  },
  {
    id: "v5-pingreq",
    desc: "PINGREQ",
    version: 5,
    bytes: bytes(0xc0, 0x00),
    packet: { type: 12 },
  },
  {
    id: "v5-pingresp",
    desc: "PINGRESP",
    version: 5,
    bytes: bytes(0xd0, 0x00),
    packet: { type: 13 },
  },
  {
    id: "v5-disconnect-normal",
    desc: "DISCONNECT Normal disconnection: remaining length 0",
    version: 5,
    bytes: bytes(0xe0, 0x00),
    packet: disconnect(),
    spec: "section 3.14.2.1",
  },
  {
    id: "v5-disconnect-with-will",
    desc: "DISCONNECT 0x04 Disconnect with Will Message without properties",
    version: 5,
    bytes: frame(0xe0, 0x04),
    packet: disconnect(0x04),
    spec: "section 3.14.2.2.1",
  },
  {
    id: "v5-disconnect-properties",
    desc: "DISCONNECT 0x9C Use another server with a session expiry, reason string and reference",
    version: 5,
    bytes: frame(
      0xe0,
      0x9c,
      props([0x11, ...u32(0)], [0x1c, ...str("other:1883")], [0x1f, ...str("moving")]),
    ),
    packet: disconnect(0x9c, {
      sessionExpiryInterval: 0,
      serverReference: "other:1883",
      reasonString: "moving",
    }),
  },
  {
    id: "v5-disconnect-empty-properties",
    desc: "DISCONNECT with Normal disconnection and a property length of 0 (not the shortest form)",
    version: 5,
    bytes: frame(0xe0, 0x00, 0x00),
    packet: disconnect(),
    reencoded: bytes(0xe0, 0x00),
  },
  {
    id: "v5-auth-continue",
    desc: "AUTH 0x18 Continue authentication with method and data",
    version: 5,
    bytes: frame(
      0xf0,
      0x18,
      props([0x15, ...str("SCRAM-SHA-1")], [0x16, ...bin("client-first")]),
    ),
    packet: auth(0x18, {
      authenticationMethod: "SCRAM-SHA-1",
      authenticationData: utf8("client-first"),
    }),
  },
  {
    id: "v5-auth-reauthenticate",
    desc: "AUTH 0x19 Re-authenticate with a reason string and a user property",
    version: 5,
    bytes: frame(
      0xf0,
      0x19,
      props(
        [0x15, ...str("SCRAM-SHA-1")],
        [0x1f, ...str("again")],
        [0x26, ...str("k"), ...str("v")],
      ),
    ),
    packet: auth(0x19, {
      authenticationMethod: "SCRAM-SHA-1",
      reasonString: "again",
      userProperties: [["k", "v"]],
    }),
  },
];

/** Packets that decode but that a server must refuse (`validationError`). */
export const v5Invalid: PacketCase[] = [
  {
    id: "v5-connect-receive-maximum-0",
    desc: "CONNECT with receive maximum 0",
    version: 5,
    bytes: frame(0x10, connectHead(0x02), props([0x21, ...u16(0)]), str("c")),
    packet: connect({ protocolVersion: 5, properties: { receiveMaximum: 0 } }),
    validationError: PROTOCOL_ERROR,
    spec: "section 3.1.2.11.3",
  },
  {
    id: "v5-connect-maximum-packet-size-0",
    desc: "CONNECT with maximum packet size 0",
    version: 5,
    bytes: frame(0x10, connectHead(0x02), props([0x27, ...u32(0)]), str("c")),
    packet: connect({ protocolVersion: 5, properties: { maximumPacketSize: 0 } }),
    validationError: PROTOCOL_ERROR,
    spec: "section 3.1.2.11.4",
  },
  {
    id: "v5-connect-request-response-information-2",
    desc: "CONNECT with request response information 2",
    version: 5,
    bytes: frame(0x10, connectHead(0x02), props([0x19, 0x02]), str("c")),
    packet: connect({ protocolVersion: 5, properties: { requestResponseInformation: 2 } }),
    validationError: PROTOCOL_ERROR,
    spec: "section 3.1.2.11.6",
  },
  {
    id: "v5-connect-request-problem-information-2",
    desc: "CONNECT with request problem information 2",
    version: 5,
    bytes: frame(0x10, connectHead(0x02), props([0x17, 0x02]), str("c")),
    packet: connect({ protocolVersion: 5, properties: { requestProblemInformation: 2 } }),
    validationError: PROTOCOL_ERROR,
    spec: "section 3.1.2.11.7",
  },
  {
    id: "v5-connect-authentication-data-without-method",
    desc: "CONNECT with authentication data but no authentication method",
    version: 5,
    bytes: frame(0x10, connectHead(0x02), props([0x16, ...bin("x")]), str("c")),
    packet: connect({ protocolVersion: 5, properties: { authenticationData: utf8("x") } }),
    validationError: PROTOCOL_ERROR,
    spec: "section 3.1.2.11.10",
  },
  {
    id: "v5-connect-will-payload-format-2",
    desc: "CONNECT whose will has payload format indicator 2",
    version: 5,
    bytes: frame(0x10, connectHead(0x06), 0x00, str("c"), props([0x01, 0x02]), str("w"), bin("")),
    packet: connect({
      protocolVersion: 5,
      will: {
        topic: "w",
        payload: new Uint8Array(0),
        qos: 0,
        retain: false,
        properties: { payloadFormatIndicator: 2 },
      },
    }),
    validationError: PROTOCOL_ERROR,
    spec: "section 3.1.3.2.3",
  },
  {
    id: "v5-publish-dup-qos0",
    desc: "PUBLISH QoS 0 with DUP set",
    version: 5,
    bytes: frame(0x38, str("a/b"), 0x00),
    packet: publish({ dup: true }),
    validationError: PROTOCOL_ERROR,
    spec: "[MQTT-3.3.1-2]",
  },
  {
    id: "v5-publish-qos2-packet-id-0",
    desc: "PUBLISH QoS 2 with packet identifier 0",
    version: 5,
    bytes: frame(0x34, str("a/b"), u16(0), 0x00),
    packet: publish({ qos: 2 }),
    validationError: PROTOCOL_ERROR,
    spec: "[MQTT-2.2.1-3]",
  },
  {
    id: "v5-publish-topic-alias-0",
    desc: "PUBLISH with topic alias 0",
    version: 5,
    bytes: frame(0x30, str("a/b"), props([0x23, ...u16(0)])),
    packet: publish({ properties: { topicAlias: 0 } }),
    validationError: TOPIC_ALIAS_INVALID,
    spec: "[MQTT-3.3.2-8]",
  },
  {
    id: "v5-publish-empty-topic-without-alias",
    desc: "PUBLISH with an empty topic name and no topic alias",
    version: 5,
    bytes: frame(0x30, str(""), 0x00, "x"),
    packet: publish({ topic: "", payload: utf8("x") }),
    validationError: PROTOCOL_ERROR,
    spec: "section 3.3.2.1",
  },
  {
    id: "v5-publish-subscription-identifiers",
    desc: "PUBLISH as a server sends it, with two subscription identifiers (one 4-byte)",
    version: 5,
    bytes: frame(
      0x30,
      str("a/b"),
      props([0x0b, 0x01], [0x0b, 0xff, 0xff, 0xff, 0x7f]), // identifiers 1 and 268,435,455
      "x",
    ),
    packet: publish({
      properties: { subscriptionIdentifiers: [1, 268_435_455] },
      payload: utf8("x"),
    }),
    validationError: PROTOCOL_ERROR,
    spec: "[MQTT-3.3.4-4] [MQTT-3.3.4-6]",
  },
  {
    id: "v5-publish-payload-format-2",
    desc: "PUBLISH with payload format indicator 2",
    version: 5,
    bytes: frame(0x30, str("a/b"), props([0x01, 0x02])),
    packet: publish({ properties: { payloadFormatIndicator: 2 } }),
    validationError: PROTOCOL_ERROR,
    spec: "section 3.3.2.3.2",
  },
  {
    id: "v5-puback-reason-0x04",
    desc: "PUBACK with reason code 0x04, which is not a PUBACK reason code",
    version: 5,
    bytes: frame(0x40, u16(1), 0x04),
    packet: ack(4, 1, 0x04),
    validationError: PROTOCOL_ERROR,
    spec: "[MQTT-3.4.2-1]",
  },
  {
    id: "v5-pubrec-reason-0x92",
    desc: "PUBREC with reason code 0x92, which only PUBREL and PUBCOMP use",
    version: 5,
    bytes: frame(0x50, u16(1), 0x92),
    packet: ack(5, 1, 0x92),
    validationError: PROTOCOL_ERROR,
    spec: "[MQTT-3.5.2-1]",
  },
  {
    id: "v5-pubrel-reason-0x10",
    desc: "PUBREL with reason code 0x10",
    version: 5,
    bytes: frame(0x62, u16(1), 0x10),
    packet: ack(6, 1, 0x10),
    validationError: PROTOCOL_ERROR,
    spec: "[MQTT-3.6.2-1]",
  },
  {
    id: "v5-pubcomp-reason-0x80",
    desc: "PUBCOMP with reason code 0x80",
    version: 5,
    bytes: frame(0x70, u16(1), 0x80),
    packet: ack(7, 1, 0x80),
    validationError: PROTOCOL_ERROR,
    spec: "[MQTT-3.7.2-1]",
  },
  {
    id: "v5-pubcomp-packet-id-0",
    desc: "PUBCOMP with packet identifier 0",
    version: 5,
    bytes: frame(0x70, u16(0)),
    packet: ack(7, 0),
    validationError: PROTOCOL_ERROR,
    spec: "[MQTT-2.2.1-5]",
  },
  {
    id: "v5-subscribe-packet-id-0",
    desc: "SUBSCRIBE with packet identifier 0",
    version: 5,
    bytes: frame(0x82, u16(0), 0x00, str("a"), 0x00),
    packet: subscribe(0, [subscription("a", 0)]),
    validationError: PROTOCOL_ERROR,
    spec: "[MQTT-2.2.1-3]",
  },
  {
    id: "v5-subscribe-subscription-identifier-0",
    desc: "SUBSCRIBE with subscription identifier 0",
    version: 5,
    bytes: frame(0x82, u16(1), props([0x0b, 0x00]), str("a"), 0x00),
    packet: subscribe(1, [subscription("a", 0)], { subscriptionIdentifiers: [0] }),
    validationError: PROTOCOL_ERROR,
    spec: "section 3.8.2.1.2",
  },
  {
    id: "v5-subscribe-no-local-shared",
    desc: "SUBSCRIBE with No Local on a shared subscription",
    version: 5,
    bytes: frame(0x82, u16(1), 0x00, str("$share/g/a"), 0b0000_0101),
    packet: subscribe(1, [subscription("$share/g/a", 1, { noLocal: true })]),
    validationError: PROTOCOL_ERROR,
    spec: "[MQTT-3.8.3-4]",
  },
  {
    id: "v5-unsubscribe-packet-id-0",
    desc: "UNSUBSCRIBE with packet identifier 0",
    version: 5,
    bytes: frame(0xa2, u16(0), 0x00, str("a")),
    packet: unsubscribe(0, ["a"]),
    validationError: PROTOCOL_ERROR,
    spec: "[MQTT-2.2.1-3]",
  },
  {
    id: "v5-disconnect-reason-0x05",
    desc: "DISCONNECT with reason code 0x05, which is not a DISCONNECT reason code",
    version: 5,
    bytes: frame(0xe0, 0x05),
    packet: disconnect(0x05),
    validationError: PROTOCOL_ERROR,
    spec: "[MQTT-3.14.2-1]",
  },
  {
    id: "v5-auth-reason-0x01",
    desc: "AUTH with reason code 0x01, which is not an AUTH reason code",
    version: 5,
    bytes: frame(0xf0, 0x01, props([0x15, ...str("M")])),
    packet: auth(0x01, { authenticationMethod: "M" }),
    validationError: PROTOCOL_ERROR,
    spec: "[MQTT-3.15.2-1]",
  },
  {
    id: "v5-auth-success-empty",
    desc:
      "AUTH Success with remaining length 0: legal shape, but it lacks the authentication method",
    version: 5,
    bytes: bytes(0xf0, 0x00),
    packet: auth(),
    validationError: PROTOCOL_ERROR,
    spec: "section 3.15.2.1 [MQTT-4.12.0-5]",
  },
  {
    id: "v5-auth-reason-only",
    desc: "AUTH with a reason code and no property length",
    version: 5,
    bytes: frame(0xf0, 0x19),
    packet: auth(0x19),
    reencoded: frame(0xf0, 0x19, 0x00),
    validationError: PROTOCOL_ERROR,
    spec: "[MQTT-4.12.0-5]",
  },
];

/** Packets whose decoding fails (`error`). */
export const v5Malformed: PacketCase[] = [
  {
    id: "v5-remaining-length-5-bytes",
    desc: "Remaining length with a continuation bit on its fourth byte",
    version: 5,
    bytes: bytes(0x30, [0x80, 0x80, 0x80, 0x80], 0x01),
    error: MALFORMED,
    spec: "section 1.5.5",
  },
  {
    id: "v5-remaining-length-non-minimal",
    desc: "Remaining length 2 encoded in two bytes (82 00)",
    version: 5,
    bytes: bytes(0x40, [0x82, 0x00], u16(1)),
    error: MALFORMED,
    spec: "[MQTT-1.5.5-1]",
  },
  {
    id: "v5-connect-fixed-header-flags",
    desc: "CONNECT with fixed header flags 0b1000",
    version: 5,
    bytes: frame(0x18, connectHead(0x02), 0x00, str("c")),
    error: MALFORMED,
    spec: "[MQTT-2.1.3-1]",
  },
  {
    id: "v5-connect-bad-protocol-name",
    desc: "CONNECT with protocol name mqtt (lower case)",
    version: 5,
    bytes: frame(0x10, str("mqtt"), 0x05, 0x02, u16(60), 0x00, str("c")),
    error: MALFORMED,
    spec: "[MQTT-3.1.2-1]",
  },
  {
    id: "v5-connect-level-6",
    desc: "CONNECT with protocol version 6",
    version: 5,
    bytes: frame(0x10, str("MQTT"), 0x06, 0x02, u16(60), 0x00, str("c")),
    error: UNSUPPORTED_PROTOCOL_VERSION,
    spec: "[MQTT-3.1.2-2]",
  },
  {
    id: "v5-connect-reserved-flag",
    desc: "CONNECT with the reserved connect flag set",
    version: 5,
    bytes: frame(0x10, connectHead(0b0000_0011), 0x00, str("c")),
    error: MALFORMED,
    spec: "[MQTT-3.1.2-3]",
  },
  {
    id: "v5-connect-will-qos-without-will",
    desc: "CONNECT with will QoS 2 and no will flag",
    version: 5,
    bytes: frame(0x10, connectHead(0b0001_0010), 0x00, str("c")),
    error: MALFORMED,
    spec: "[MQTT-3.1.2-11]",
  },
  {
    id: "v5-connect-will-retain-without-will",
    desc: "CONNECT with will retain and no will flag",
    version: 5,
    bytes: frame(0x10, connectHead(0b0010_0010), 0x00, str("c")),
    error: MALFORMED,
    spec: "[MQTT-3.1.2-13]",
  },
  {
    id: "v5-connect-will-qos-3",
    desc: "CONNECT with a will of QoS 3",
    version: 5,
    bytes: frame(0x10, connectHead(0b0001_1110), 0x00, str("c"), 0x00, str("w"), bin("x")),
    error: MALFORMED,
    spec: "[MQTT-3.1.2-12]",
  },
  {
    id: "v5-connect-property-not-allowed",
    desc: "CONNECT with a topic alias property, which only PUBLISH may carry",
    version: 5,
    bytes: frame(0x10, connectHead(0x02), props([0x23, ...u16(1)]), str("c")),
    error: MALFORMED,
    spec: "section 2.2.2.2",
  },
  {
    id: "v5-connect-duplicate-property",
    desc: "CONNECT with the session expiry interval twice",
    version: 5,
    bytes: frame(0x10, connectHead(0x02), props([0x11, ...u32(1)], [0x11, ...u32(2)]), str("c")),
    error: PROTOCOL_ERROR,
    spec: "section 3.1.2.11.2",
  },
  {
    id: "v5-connect-unknown-property",
    desc: "CONNECT with property identifier 0x7F",
    version: 5,
    bytes: frame(0x10, connectHead(0x02), props([0x7f, 0x00]), str("c")),
    error: MALFORMED,
    spec: "section 2.2.2.2",
  },
  {
    id: "v5-connect-property-length-overruns",
    desc: "CONNECT whose property length runs past the packet",
    version: 5,
    bytes: frame(0x10, connectHead(0x02), 0x20, [0x11, ...u32(1)]),
    error: MALFORMED,
    spec: "section 2.2.2.1",
  },
  {
    id: "v5-connect-property-value-overruns",
    desc: "CONNECT whose four-byte session expiry runs past a property length of 3",
    version: 5,
    bytes: frame(0x10, connectHead(0x02), 0x03, [0x11, 0x00, 0x00], str("c")),
    error: MALFORMED,
    spec: "section 2.2.2.1",
  },
  {
    id: "v5-connect-will-property-not-allowed",
    desc: "CONNECT whose will properties hold a session expiry interval",
    version: 5,
    bytes: frame(
      0x10,
      connectHead(0b0000_0110),
      0x00,
      str("c"),
      props([0x11, ...u32(1)]),
      str("w"),
      bin("x"),
    ),
    error: MALFORMED,
    spec: "section 2.2.2.2",
  },
  {
    id: "v5-connect-trailing-data",
    desc: "CONNECT followed by a JSON document inside the same packet",
    version: 5,
    bytes: frame(0x10, connectHead(0x02), 0x00, str("c"), str('{"os":"linux"}')),
    error: MALFORMED,
    spec: "[MQTT-3.1.4-1]",
  },
  {
    id: "v5-connack-reserved-flags",
    desc: "CONNACK with reserved acknowledge flag bits set",
    version: 5,
    bytes: frame(0x20, 0x80, 0x00, 0x00),
    error: MALFORMED,
    spec: "[MQTT-3.2.2-1]",
  },
  {
    id: "v5-connack-no-property-length",
    desc: "CONNACK without the property length MQTT 5 requires",
    version: 5,
    bytes: frame(0x20, 0x00, 0x00),
    error: MALFORMED,
  },
  {
    id: "v5-publish-qos3",
    desc: "PUBLISH with both QoS bits set",
    version: 5,
    bytes: frame(0x36, str("a/b"), u16(1), 0x00),
    error: MALFORMED,
    spec: "[MQTT-3.3.1-4]",
  },
  {
    id: "v5-publish-no-property-length",
    desc: "PUBLISH that ends after its topic name",
    version: 5,
    bytes: frame(0x30, str("a/b")),
    error: MALFORMED,
  },
  {
    id: "v5-publish-topic-surrogate",
    desc: "PUBLISH whose topic encodes the surrogate U+DFFF (ED BF BF)",
    version: 5,
    bytes: frame(0x30, u16(3), [0xed, 0xbf, 0xbf], 0x00),
    error: MALFORMED,
    spec: "[MQTT-1.5.4-1]",
  },
  {
    id: "v5-publish-property-not-allowed",
    desc: "PUBLISH with a session expiry interval property",
    version: 5,
    bytes: frame(0x30, str("a/b"), props([0x11, ...u32(1)])),
    error: MALFORMED,
    spec: "section 2.2.2.2",
  },
  {
    id: "v5-publish-duplicate-topic-alias",
    desc: "PUBLISH with the topic alias twice",
    version: 5,
    bytes: frame(0x30, str("a/b"), props([0x23, ...u16(1)], [0x23, ...u16(2)])),
    error: PROTOCOL_ERROR,
    spec: "section 3.3.2.3.4",
  },
  {
    id: "v5-publish-content-type-null",
    desc: "PUBLISH whose content type contains U+0000",
    version: 5,
    bytes: frame(0x30, str("a/b"), props([0x03, ...u16(2), 0x61, 0x00])),
    error: MALFORMED,
    spec: "[MQTT-1.5.4-2]",
  },
  {
    id: "v5-publish-user-property-ill-formed",
    desc: "PUBLISH whose user property name is the lone byte FF",
    version: 5,
    bytes: frame(0x30, str("a/b"), props([0x26, ...u16(1), 0xff, ...str("v")])),
    error: MALFORMED,
    spec: "[MQTT-1.5.7-1]",
  },
  {
    id: "v5-publish-property-length-5-bytes",
    desc: "PUBLISH whose property length has a continuation bit on its fourth byte",
    version: 5,
    bytes: frame(0x30, str("a/b"), [0xff, 0xff, 0xff, 0xff, 0x01]),
    error: MALFORMED,
    spec: "section 1.5.5",
  },
  {
    id: "v5-publish-subscription-identifier-non-minimal",
    desc: "PUBLISH whose subscription identifier 0 is encoded in two bytes (80 00)",
    version: 5,
    bytes: frame(0x30, str("a/b"), props([0x0b, 0x80, 0x00])),
    error: MALFORMED,
    spec: "[MQTT-1.5.5-1]",
  },
  {
    id: "v5-puback-flags",
    desc: "PUBACK with fixed header flags 0b0010",
    version: 5,
    bytes: frame(0x42, u16(1)),
    error: MALFORMED,
    spec: "[MQTT-2.1.3-1]",
  },
  {
    id: "v5-puback-property-not-allowed",
    desc: "PUBACK with a topic alias property",
    version: 5,
    bytes: frame(0x40, u16(1), 0x00, props([0x23, ...u16(1)])),
    error: MALFORMED,
    spec: "section 2.2.2.2",
  },
  {
    id: "v5-puback-property-length-overruns",
    desc: "PUBACK whose property length runs past the packet",
    version: 5,
    bytes: frame(0x40, u16(1), 0x00, 0x05, 0x1f),
    error: MALFORMED,
    spec: "section 2.2.2.1",
  },
  {
    id: "v5-puback-truncated",
    desc: "PUBACK with a one-byte packet identifier",
    version: 5,
    bytes: frame(0x40, 0x01),
    error: MALFORMED,
  },
  {
    id: "v5-pubrel-flags",
    desc: "PUBREL with fixed header flags 0b0000",
    version: 5,
    bytes: frame(0x60, u16(1)),
    error: MALFORMED,
    spec: "[MQTT-3.6.1-1]",
  },
  {
    id: "v5-subscribe-flags",
    desc: "SUBSCRIBE with fixed header flags 0b0011",
    version: 5,
    bytes: frame(0x83, u16(1), 0x00, str("a"), 0x00),
    error: MALFORMED,
    spec: "[MQTT-3.8.1-1]",
  },
  {
    id: "v5-subscribe-no-filter",
    desc: "SUBSCRIBE without any topic filter",
    version: 5,
    bytes: frame(0x82, u16(1), 0x00),
    error: PROTOCOL_ERROR,
    spec: "[MQTT-3.8.3-2]",
  },
  {
    id: "v5-subscribe-reserved-bits",
    desc: "SUBSCRIBE with bit 6 of the subscription options set",
    version: 5,
    bytes: frame(0x82, u16(1), 0x00, str("a"), 0b0100_0000),
    error: MALFORMED,
    spec: "[MQTT-3.8.3-5]",
  },
  {
    id: "v5-subscribe-qos-3",
    desc: "SUBSCRIBE with maximum QoS 3",
    version: 5,
    bytes: frame(0x82, u16(1), 0x00, str("a"), 0b0000_0011),
    error: PROTOCOL_ERROR,
    spec: "section 3.8.3.1",
  },
  {
    id: "v5-subscribe-retain-handling-3",
    desc: "SUBSCRIBE with retain handling 3",
    version: 5,
    bytes: frame(0x82, u16(1), 0x00, str("a"), 0b0011_0000),
    error: PROTOCOL_ERROR,
    spec: "section 3.8.3.1",
  },
  {
    id: "v5-subscribe-two-subscription-identifiers",
    desc: "SUBSCRIBE with two subscription identifiers",
    version: 5,
    bytes: frame(0x82, u16(1), props([0x0b, 0x01], [0x0b, 0x02]), str("a"), 0x00),
    error: PROTOCOL_ERROR,
    spec: "section 3.8.2.1.2",
  },
  {
    id: "v5-subscribe-property-not-allowed",
    desc: "SUBSCRIBE with a reason string property",
    version: 5,
    bytes: frame(0x82, u16(1), props([0x1f, ...str("x")]), str("a"), 0x00),
    error: MALFORMED,
    spec: "section 2.2.2.2",
  },
  {
    id: "v5-unsubscribe-flags",
    desc: "UNSUBSCRIBE with fixed header flags 0b0000",
    version: 5,
    bytes: frame(0xa0, u16(1), 0x00, str("a")),
    error: MALFORMED,
    spec: "[MQTT-3.10.1-1]",
  },
  {
    id: "v5-unsubscribe-no-filter",
    desc: "UNSUBSCRIBE without any topic filter",
    version: 5,
    bytes: frame(0xa2, u16(1), 0x00),
    error: PROTOCOL_ERROR,
    spec: "[MQTT-3.10.3-2]",
  },
  {
    id: "v5-unsubscribe-subscription-identifier",
    desc: "UNSUBSCRIBE with a subscription identifier property",
    version: 5,
    bytes: frame(0xa2, u16(1), props([0x0b, 0x01]), str("a")),
    error: MALFORMED,
    spec: "section 2.2.2.2",
  },
  {
    id: "v5-pingresp-body",
    desc: "PINGRESP with a body byte",
    version: 5,
    bytes: frame(0xd0, 0x00),
    error: MALFORMED,
  },
  {
    id: "v5-disconnect-flags",
    desc: "DISCONNECT with fixed header flags 0b0001",
    version: 5,
    bytes: bytes(0xe1, 0x00),
    error: MALFORMED,
    spec: "[MQTT-3.14.1-1]",
  },
  {
    id: "v5-disconnect-property-not-allowed",
    desc: "DISCONNECT with an assigned client identifier property",
    version: 5,
    bytes: frame(0xe0, 0x00, props([0x12, ...str("x")])),
    error: MALFORMED,
    spec: "section 2.2.2.2",
  },
  {
    id: "v5-auth-flags",
    desc: "AUTH with fixed header flags 0b0001",
    version: 5,
    bytes: bytes(0xf1, 0x00),
    error: MALFORMED,
    spec: "[MQTT-3.15.1-1]",
  },
  {
    id: "v5-auth-property-not-allowed",
    desc: "AUTH with a session expiry interval property",
    version: 5,
    bytes: frame(0xf0, 0x18, props([0x15, ...str("M")], [0x11, ...u32(1)])),
    error: MALFORMED,
    spec: "section 2.2.2.2",
  },
];

/** Every MQTT 5.0 vector. */
export const v5Cases: PacketCase[] = [...v5Valid, ...v5Invalid, ...v5Malformed];
