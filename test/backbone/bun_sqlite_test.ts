/**
 * The SQLite backbone on Bun with its `bun:sqlite` driver: a script run by `bun` opens a backbone
 * on a temporary file, stores a session, a retained message, queued messages (one handed out, with
 * its QoS 2 state) and an open QoS 2 packet id, closes it, opens the file again and reports what
 * came back.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";

const source = (path: string) => new URL(`../../src/${path}`, import.meta.url).href;

const PROBE = `
import { openBunSqlite } from "${source("backbone/bun_sqlite.ts")}";
import { SqliteBackbone } from "${source("backbone/sqlite.ts")}";
import { ManualClock } from "${source("util/manual_clock.ts")}";

const path = process.argv[2];
const clock = new ManualClock(1_700_000_000_000);
const open = () => SqliteBackbone.open({ path, open: openBunSqlite, clock });
const message = (topic, payload, qos) => ({
  topic, payload: new TextEncoder().encode(payload), qos, retain: false,
  properties: { correlationData: new Uint8Array([1, 2]) }, expiresAt: 0, origin: "pub",
});
const limits = { maxMessages: 10, maxBytes: 1000 };

const first = await open();
const revision = await first.sessions.put({
  clientId: "c1", protocolVersion: 5, expiryInterval: 60, subscriptions: [], will: undefined,
  owner: undefined, disconnectedAt: 5,
}, 0);
await first.retained.set({ ...message("r", "kept", 1), retain: true });
await first.queues.setFilters("sub", ["t"], limits);
await first.messages.publish(message("t", "handed out", 2), { clientId: "pub", packetId: 9 });
await first.messages.publish(message("t", "", 1));
const handle = await first.queues.open({ kind: "session", clientId: "sub" }, async ([delivery]) => {
  await handle.recordPacketId(delivery.seq, 4);
  await handle.release(delivery.seq);
  await handle.close();
  await first.close();
  const second = await open();
  const deliveries = [];
  const again = await second.queues.open({ kind: "session", clientId: "sub" }, async (batch) => {
    // As handed out: an entry handed back by close() is marked redelivered.
    deliveries.push(...batch.map((d) => [
      new TextDecoder().decode(d.message.payload), d.packetId, d.released, d.redelivered,
      Array.from(d.message.properties.correlationData),
    ]));
    if (deliveries.length < 2) return;
    await again.close();
    console.log(JSON.stringify({
      runtime: typeof Bun === "undefined" ? "not bun" : "bun",
      loaded: second.loaded,
      session: (await second.sessions.get("c1"))?.revision === revision,
      retained: new TextDecoder().decode((await second.retained.get("r"))?.payload),
      deliveries,
      inbound: await second.messages.openInbound("pub"),
    }));
    await second.close();
  });
  again.request(2);
});
handle.request(1);
`;

Deno.test("SqliteBackbone on Bun: bun:sqlite stores and reads back sessions, retained and queued messages", async () => {
  const dir = await Deno.makeTempDir({ prefix: "perch-bun-sqlite-" });
  try {
    await Deno.writeTextFile(join(dir, "probe.ts"), PROBE);
    let output: Deno.CommandOutput;
    try {
      output = await new Deno.Command("bun", {
        args: ["run", "probe.ts", join(dir, "perch.db")],
        cwd: dir,
        stdin: "null",
      }).output();
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        throw new Error("Cannot run bun: it is not installed; run `npm install -g bun`");
      }
      throw err;
    }
    const stdout = new TextDecoder().decode(output.stdout);
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, `bun failed:\n${stdout}\n${stderr}`);
    assert.deepEqual(JSON.parse(stdout), {
      runtime: "bun",
      loaded: { sessions: 1, retained: 1, queued: 2, cleanShutdown: true },
      session: true,
      retained: "kept",
      deliveries: [["handed out", 4, true, true, [1, 2]], ["", 0, false, false, [1, 2]]],
      inbound: [9],
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
