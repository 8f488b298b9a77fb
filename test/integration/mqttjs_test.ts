/**
 * Interoperability with mqtt.js (npm `mqtt`, the most used JavaScript client) over real TCP
 * sockets, against an in-process broker. Every scenario runs with MQTT 3.1.1 (protocol level 4)
 * and MQTT 5; the MQTT 5 features (properties, subscription identifiers, No Local) run on 5 only.
 * The scenarios of both versions run again against the broker as a process on Deno and on Bun, and
 * through haproxy against three front-ends on NATS (`../helpers/interop_targets.ts`).
 *
 * @module
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { inProcess, ON_RUNTIMES, throughHaproxy } from "../helpers/interop_targets.ts";
import { collect, connackOf, connect, endAll, type Received, WAIT_MS } from "../helpers/mqttjs.ts";
import { targetTest } from "../helpers/targets.ts";

type Version = 4 | 5;
const VERSIONS: Version[] = [4, 5];
/**
 * The scenarios both versions share run in this process, as a process on Deno and on Bun, and
 * through a cluster.
 */
const TARGETS = [inProcess, ...ON_RUNTIMES, throughHaproxy()];

for (const target of TARGETS) {
  for (const version of VERSIONS) {
    const v = `${target.prefix}mqtt.js v${version === 4 ? "3.1.1" : "5"}`;

    Deno.test(
      `${v}: QoS 0/1/2 round trips through + and # filters keep topic, payload and QoS ${
        version === 4 ? "[MQTT-3.8.4-6]" : "[MQTT-3.8.4-8]"
      }`,
      async () => {
        const server = await target.start();
        let sub: MqttClient | undefined;
        let pub: MqttClient | undefined;
        try {
          ({ client: sub } = await connect(server, {
            protocolVersion: version,
            clientId: "rt-sub",
          }));
          const granted = await sub.subscribeAsync({
            "rt/+/x": { qos: 2 },
            "rt/deep/#": { qos: 2 },
          });
          assert.deepEqual(granted.map((g) => [g.topic, g.qos]), [["rt/+/x", 2], ["rt/deep/#", 2]]);
          ({ client: pub } = await connect(server, {
            protocolVersion: version,
            clientId: "rt-pub",
          }));
          const arriving = collect(sub, 6);
          const binary = Buffer.from([0x00, 0xff, 0x7f, 0x80, 0x0a]);
          for (const qos of [0, 1, 2] as const) {
            await pub.publishAsync("rt/a/x", `text qos ${qos}`, { qos });
            await pub.publishAsync(
              `rt/deep/${qos}/z`,
              Buffer.concat([binary, Buffer.from([qos])]),
              {
                qos,
              },
            );
          }
          const got = await arriving;
          const byTopicAndQos = new Map(got.map((m) => [`${m.topic}@${m.packet.qos}`, m]));
          for (const qos of [0, 1, 2] as const) {
            const text = byTopicAndQos.get(`rt/a/x@${qos}`);
            assert.ok(text, `no QoS ${qos} message on rt/a/x`);
            assert.equal(text.payload.toString(), `text qos ${qos}`);
            const bin = byTopicAndQos.get(`rt/deep/${qos}/z@${qos}`);
            assert.ok(bin, `no QoS ${qos} message on rt/deep/${qos}/z`);
            assert.deepEqual([...bin.payload], [...binary, qos]);
            assert.equal(bin.packet.retain, false);
          }
        } finally {
          await endAll([sub, pub]);
          await server.close();
        }
      },
    );

    Deno.test(
      `${v}: a retained message reaches later subscribers and an empty payload clears it ${
        version === 4 ? "[MQTT-3.3.1-5] [MQTT-3.3.1-10]" : "[MQTT-3.3.1-5] [MQTT-3.3.1-6]"
      }`,
      async () => {
        const server = await target.start();
        let pub: MqttClient | undefined;
        let late: MqttClient | undefined;
        let later: MqttClient | undefined;
        try {
          ({ client: pub } = await connect(server, {
            protocolVersion: version,
            clientId: "ret-pub",
          }));
          // QoS 1: the PUBACK comes after the broker stored the message.
          await pub.publishAsync("ret/a", "kept", { qos: 1, retain: true });

          ({ client: late } = await connect(server, {
            protocolVersion: version,
            clientId: "ret-sub1",
          }));
          const retained = collect(late, 1);
          await late.subscribeAsync("ret/#", { qos: 1 });
          const [first] = await retained;
          assert.equal(first.topic, "ret/a");
          assert.equal(first.payload.toString(), "kept");
          assert.equal(first.packet.retain, true); // [MQTT-3.3.1-8] (3.1.1), [MQTT-3.3.1-9] (5)

          // The empty retained publish is delivered live (RETAIN clear) and removes the message.
          const cleared = collect(late, 1);
          await pub.publishAsync("ret/a", "", { qos: 1, retain: true });
          const [live] = await cleared;
          assert.equal(live.payload.length, 0);
          assert.equal(live.packet.retain, false);

          // A new subscriber gets no retained message: the first thing it sees is the live marker.
          ({ client: later } = await connect(server, {
            protocolVersion: version,
            clientId: "ret-sub2",
          }));
          const next = collect(later, 1);
          await later.subscribeAsync("ret/#", { qos: 1 });
          await pub.publishAsync("ret/a", "marker", { qos: 1 });
          const [marker] = await next;
          assert.equal(marker.payload.toString(), "marker");
          assert.equal(marker.packet.retain, false);
        } finally {
          await endAll([pub, late, later]);
          await server.close();
        }
      },
    );

    Deno.test(
      `${v}: a persistent session receives QoS 1 and 2 messages published while offline ${
        version === 4 ? "[MQTT-3.1.2-5] [MQTT-3.2.2-2]" : "[MQTT-3.1.2-5] [MQTT-3.2.2-3]"
      }`,
      async () => {
        const server = await target.start();
        const clientId = `persist-v${version}`;
        // 3.1.1: clean=false; MQTT 5: Clean Start 0 plus a Session Expiry Interval.
        const session: IClientOptions = version === 5
          ? {
            protocolVersion: 5,
            clientId,
            clean: false,
            properties: { sessionExpiryInterval: 300 },
          }
          : { protocolVersion: 4, clientId, clean: false };
        let sub: MqttClient | undefined;
        let pub: MqttClient | undefined;
        try {
          const first = await connect(server, session);
          sub = first.client;
          assert.equal(first.sessionPresent, false);
          await sub.subscribeAsync("offline/+", { qos: 2 });
          await sub.endAsync();
          sub = undefined;

          ({ client: pub } = await connect(server, {
            protocolVersion: version,
            clientId: "off-pub",
          }));
          await pub.publishAsync("offline/one", "q1 while away", { qos: 1 });
          await pub.publishAsync("offline/two", "q2 while away", { qos: 2 });
          await pub.publishAsync("offline/zero", "q0 is not kept", { qos: 0 });
          assert.equal((await server.session(clientId))?.queued, 2);

          // Listen before the CONNACK can arrive: queued messages follow it at once.
          const back = mqtt.connect(`mqtt://127.0.0.1:${server.port}`, {
            reconnectPeriod: 0,
            connectTimeout: WAIT_MS,
            ...session,
          });
          sub = back;
          const arriving = collect(back, 2);
          assert.equal((await connackOf(back)).sessionPresent, true);
          const got = await arriving;
          assert.deepEqual(
            got.map((m) => [m.topic, m.payload.toString(), m.packet.qos]),
            [["offline/one", "q1 while away", 1], ["offline/two", "q2 while away", 2]],
          );
        } finally {
          await endAll([sub, pub]);
          await server.close();
        }
      },
    );

    Deno.test(`${v}: the will is published when the connection drops without DISCONNECT [MQTT-3.1.2-8]`, async () => {
      const server = await target.start();
      let watcher: MqttClient | undefined;
      let dying: MqttClient | undefined;
      try {
        ({ client: watcher } = await connect(server, {
          protocolVersion: version,
          clientId: "will-watch",
        }));
        await watcher.subscribeAsync("will/#", { qos: 1 });
        ({ client: dying } = await connect(server, {
          protocolVersion: version,
          clientId: "will-dying",
          will: {
            topic: `will/v${version}`,
            payload: Buffer.from("went away"),
            qos: 1,
            retain: false,
            ...(version === 5 ? { properties: { contentType: "text/plain" } } : {}),
          },
        }));
        const will = collect(watcher, 1);
        dying.stream.destroy(); // Abnormal close: no DISCONNECT reaches the broker.
        const [message] = await will;
        assert.equal(message.topic, `will/v${version}`);
        assert.equal(message.payload.toString(), "went away");
        assert.equal(message.packet.qos, 1);
        if (version === 5) assert.equal(message.packet.properties?.contentType, "text/plain");
      } finally {
        await endAll([watcher, dying]);
        await server.close();
      }
    });

    Deno.test(`${v}: a normal DISCONNECT discards the will [MQTT-3.1.2-10] [MQTT-3.14.4-3]`, async () => {
      const server = await target.start();
      let watcher: MqttClient | undefined;
      let leaving: MqttClient | undefined;
      try {
        ({ client: watcher } = await connect(server, {
          protocolVersion: version,
          clientId: "will-watch",
        }));
        await watcher.subscribeAsync("will/#", { qos: 1 });
        ({ client: leaving } = await connect(server, {
          protocolVersion: version,
          clientId: "will-leaving",
          will: {
            topic: "will/leaving",
            payload: Buffer.from("unexpected"),
            qos: 1,
            retain: false,
          },
        }));
        const next = collect(watcher, 1);
        await leaving.endAsync();
        leaving = undefined;
        // The first message the watcher sees must be this marker, not the will.
        await watcher.publishAsync("will/marker", "after disconnect", { qos: 1 });
        const [message] = await next;
        assert.equal(message.topic, "will/marker");
      } finally {
        await endAll([watcher, leaving]);
        await server.close();
      }
    });

    Deno.test(`${v}: a shared subscription $share/g/t gives each message to exactly one of two clients`, async () => {
      const server = await target.start();
      let a: MqttClient | undefined;
      let b: MqttClient | undefined;
      let pub: MqttClient | undefined;
      try {
        ({ client: a } = await connect(server, { protocolVersion: version, clientId: "share-a" }));
        ({ client: b } = await connect(server, { protocolVersion: version, clientId: "share-b" }));
        const [grantA] = await a.subscribeAsync("$share/g/share/t", { qos: 1 });
        const [grantB] = await b.subscribeAsync("$share/g/share/t", { qos: 1 });
        assert.equal(grantA.qos, 1);
        assert.equal(grantB.qos, 1);
        ({ client: pub } = await connect(server, {
          protocolVersion: version,
          clientId: "share-p",
        }));

        const total = 10;
        const seen: { who: string; payload: string }[] = [];
        const allSeen = Promise.withResolvers<void>();
        for (const [who, client] of [["a", a], ["b", b]] as const) {
          client.on("message", (topic, payload) => {
            if (topic !== "share/t") return;
            seen.push({ who, payload: payload.toString() });
            if (seen.length === total) allSeen.resolve();
          });
        }
        const guard = setTimeout(
          () => allSeen.reject(new Error(`Only ${seen.length} of ${total} shared messages`)),
          WAIT_MS,
        );
        try {
          for (let i = 0; i < total; i++) await pub.publishAsync("share/t", `m${i}`, { qos: 1 });
          await allSeen.promise;
        } finally {
          clearTimeout(guard);
        }
        // Each message exactly once across the group, and both members took part.
        assert.deepEqual(
          seen.map((s) => s.payload).sort(),
          Array.from({ length: total }, (_, i) => `m${i}`).sort(),
        );
        assert.ok(seen.some((s) => s.who === "a"), "member a got nothing");
        assert.ok(seen.some((s) => s.who === "b"), "member b got nothing");
        // Nothing more arrives (a second copy would come before this marker on a plain topic).
        const marker = collect(a, 1);
        await a.subscribeAsync("share/marker", { qos: 1 });
        await pub.publishAsync("share/marker", "end", { qos: 1 });
        assert.equal((await marker)[0].topic, "share/marker");
        assert.equal(seen.length, total);
      } finally {
        await endAll([a, b, pub]);
        await server.close();
      }
    });
  }

  Deno.test(`${target.prefix}mqtt.js: the brokers stop`, () => target.stop());
}

targetTest(
  "mqtt.js v5: user properties, response topic, correlation data and content type are forwarded unaltered [MQTT-3.3.2-15] [MQTT-3.3.2-16] [MQTT-3.3.2-17] [MQTT-3.3.2-18] [MQTT-3.3.2-20]",
  {},
  async (server) => {
    let sub: MqttClient | undefined;
    let pub: MqttClient | undefined;
    try {
      ({ client: sub } = await connect(server, { protocolVersion: 5, clientId: "props-sub" }));
      await sub.subscribeAsync("req/+", { qos: 1 });
      ({ client: pub } = await connect(server, { protocolVersion: 5, clientId: "props-pub" }));
      const arriving = collect(sub, 1);
      const correlation = Buffer.from([0xde, 0xad, 0x00, 0xbe, 0xef]);
      await pub.publishAsync("req/1", '{"q":1}', {
        qos: 1,
        properties: {
          payloadFormatIndicator: true,
          messageExpiryInterval: 3600,
          contentType: "application/json",
          responseTopic: "resp/props-pub",
          correlationData: correlation,
          userProperties: { first: "1", repeated: ["x", "y"], "ünï": "cödé" },
        },
      });
      const [message] = await arriving;
      const props = message.packet.properties;
      assert.ok(props, "no properties on the forwarded message");
      assert.equal(message.payload.toString(), '{"q":1}');
      assert.equal(props.payloadFormatIndicator, true); // [MQTT-3.3.2-4]
      assert.equal(props.contentType, "application/json");
      assert.equal(props.responseTopic, "resp/props-pub");
      assert.deepEqual([...(props.correlationData ?? [])], [...correlation]);
      assert.deepEqual({ ...props.userProperties }, {
        first: "1",
        repeated: ["x", "y"],
        "ünï": "cödé",
      });
      assert.deepEqual(Object.keys(props.userProperties ?? {}), ["first", "repeated", "ünï"]);
      // The receiver sees the time left, never more than was sent [MQTT-3.3.2-6].
      const left = props.messageExpiryInterval ?? -1;
      assert.ok(left > 3590 && left <= 3600, `message expiry interval ${left}`);
    } finally {
      await endAll([sub, pub]);
    }
  },
);

targetTest(
  "mqtt.js v5: the subscription identifier comes back on matching messages [MQTT-3.3.4-3]",
  {},
  async (server) => {
    let client: MqttClient | undefined;
    try {
      ({ client } = await connect(server, { protocolVersion: 5, clientId: "sid" }));
      await client.subscribeAsync("sid/+/a", {
        qos: 1,
        properties: { subscriptionIdentifier: 42 },
      });
      await client.subscribeAsync("sid/other", {
        qos: 1,
        properties: { subscriptionIdentifier: 7 },
      });
      await client.subscribeAsync("sid/plain", { qos: 1 });
      const arriving = collect(client, 3);
      await client.publishAsync("sid/x/a", "one", { qos: 1 });
      await client.publishAsync("sid/other", "two", { qos: 1 });
      await client.publishAsync("sid/plain", "three", { qos: 1 });
      const got = await arriving;
      const ids = (m: Received) => {
        const id = m.packet.properties?.subscriptionIdentifier;
        return id === undefined ? [] : [id].flat();
      };
      assert.deepEqual(
        got.map((m) => [m.topic, ids(m)]),
        [["sid/x/a", [42]], ["sid/other", [7]], ["sid/plain", []]],
      );
    } finally {
      await endAll([client]);
    }
  },
);

targetTest(
  "mqtt.js v5: No Local keeps a client's own messages from coming back [MQTT-3.8.3-3]",
  {},
  async (server) => {
    let self: MqttClient | undefined;
    let other: MqttClient | undefined;
    try {
      ({ client: self } = await connect(server, { protocolVersion: 5, clientId: "nl-self" }));
      const [grant] = await self.subscribeAsync("nl/t", { qos: 1, nl: true });
      assert.equal(grant.qos, 1);
      ({ client: other } = await connect(server, { protocolVersion: 5, clientId: "nl-other" }));
      const next = collect(self, 1);
      await self.publishAsync("nl/t", "from myself", { qos: 1 });
      await other.publishAsync("nl/t", "from the other client", { qos: 1 });
      // Delivery is ordered, so had the own message come back it would be first.
      const [message] = await next;
      assert.equal(message.payload.toString(), "from the other client");
    } finally {
      await endAll([self, other]);
    }
  },
);
