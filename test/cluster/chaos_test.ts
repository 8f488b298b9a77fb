/**
 * Short versions of `deno task chaos`'s fault scenarios (scripts/chaos/): real nats-server,
 * front-end and haproxy processes, sequence-numbered QoS 1/2 streams, a fault struck in the
 * middle. Each asserts that no acknowledged message was lost, that no QoS 2 message arrived twice
 * and the scenario's own checks (wills, refusals, reconnection). Every process is stopped by the
 * scenario itself (try/finally).
 *
 * @module
 */

import assert from "node:assert/strict";
import type { ScenarioResult } from "../../scripts/chaos/harness.ts";
import { frontEndKill } from "../../scripts/chaos/front_end_kill.ts";
import { natsRestart } from "../../scripts/chaos/nats_restart.ts";
import { natsNodeKill } from "../../scripts/chaos/nats_node_kill.ts";
import { natsCut } from "../../scripts/chaos/nats_cut.ts";
import { slowConsumers } from "../../scripts/chaos/slow_consumers.ts";
import { summary } from "../../scripts/chaos.ts";

function assertHeld(result: ScenarioResult): void {
  const line = summary(result);
  assert.equal(result.totals.lost, 0, line);
  assert.equal(result.totals.duplicatedQos2, 0, line);
  for (const check of result.checks) assert.ok(check.ok, `${check.name}: ${check.detail}\n${line}`);
  assert.ok(result.totals.acknowledged > 0, line);
}

Deno.test("chaos: a front-end SIGKILLed mid stream loses no acknowledged QoS 1 message, delivers QoS 2 at most once and its clients' wills once", async () => {
  const result = await frontEndKill({ messages: 120 });
  const line = summary(result);
  for (const check of result.checks) assert.ok(check.ok, `${check.name}: ${check.detail}\n${line}`);
  for (const stream of result.streams) {
    if (stream.qos === 1) assert.equal(stream.lost, 0, line);
    else assert.equal(stream.duplicated, 0, line);
  }
});

Deno.test("chaos: a front-end SIGKILLed mid stream loses no acknowledged QoS 2 message", async () => {
  assertHeld(await frontEndKill({ messages: 120 }));
});

Deno.test("chaos: nats-server killed and restarted under load: refusals while away, no acknowledged message lost", async () => {
  const result = await natsRestart({ messages: 90 });
  assertHeld({ ...result, totals: { ...result.totals, duplicatedQos2: 0 } });
});

Deno.test("chaos: nats-server killed and restarted under load: no QoS 2 message delivered twice", async () => {
  assertHeld(await natsRestart({ messages: 90 }));
});

Deno.test("chaos: the leader NATS node of a 3-node cluster (replicas 3) SIGKILLed under load: no acknowledged message lost", async () => {
  assertHeld(await natsNodeKill({ messages: 60 }));
});

Deno.test("chaos: a front-end cut off from NATS acknowledges nothing, its sessions are taken over elsewhere after its lease, and nothing is lost or doubled when it comes back", async () => {
  assertHeld(await natsCut({ messages: 60 }));
});

Deno.test("chaos: slow and absent consumers: queues bounded in JetStream, MQTT 5 publishers get 0x97, nothing acknowledged dropped, front-end memory bounded", async () => {
  assertHeld(await slowConsumers({ messages: 150 }));
});
