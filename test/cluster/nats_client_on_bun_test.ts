/**
 * The same NATS client packages under Bun, for the Bun transport to come: a script run by `bun`
 * imports all four at the versions `deno.json` names and talks to a real nats-server (core
 * request/reply with headers, a JetStream publish with its ack, a KV compare-and-set).
 *
 * The script is written to a temporary directory with no `node_modules` above it, so Bun installs
 * the packages itself (auto-install into its global cache) from the version ranges in the import
 * specifiers.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import denoJson from "../../deno.json" with { type: "json" };
import { startNatsServer } from "../helpers/nats.ts";

const PACKAGES = [
  "@nats-io/nats-core",
  "@nats-io/jetstream",
  "@nats-io/kv",
  "@nats-io/transport-node",
] as const;

/** `@nats-io/kv@^3.4.0` from deno.json's `npm:@nats-io/kv@^3.4.0`. */
function bunSpecifier(name: typeof PACKAGES[number]): string {
  const imports: Record<string, string> = denoJson.imports;
  return imports[name].replace(/^npm:/, "");
}

const PROBE = `
import { connect } from "${bunSpecifier("@nats-io/transport-node")}";
import { headers } from "${bunSpecifier("@nats-io/nats-core")}";
import { jetstream, jetstreamManager } from "${bunSpecifier("@nats-io/jetstream")}";
import { Kvm } from "${bunSpecifier("@nats-io/kv")}";

const nc = await connect({ servers: process.argv[2] });
nc.subscribe("probe.echo", {
  callback: (_err, msg) => msg.respond(msg.data, { headers: msg.headers }),
});
const h = headers();
h.set("Probe", "yes");
const reply = await nc.request("probe.echo", "ping", { headers: h, timeout: 30_000 });
const jsm = await jetstreamManager(nc, { timeout: 30_000 });
await jsm.streams.add({ name: "PROBE", subjects: ["probe.js.>"] });
const ack = await jetstream(nc, { timeout: 30_000 }).publish("probe.js.a", "stored");
const kv = await new Kvm(nc).create("probe");
const revision = await kv.create("k", "v1");
const updated = await kv.update("k", "v2", revision);
const stale = await kv.update("k", "v3", revision).then(() => "accepted", () => "refused");
console.log(JSON.stringify({
  runtime: typeof Bun === "undefined" ? "not bun" : "bun",
  reply: reply.string(),
  header: reply.headers?.get("Probe"),
  ack: { stream: ack.stream, seq: ack.seq },
  kv: { revision, updated, stale, value: (await kv.get("k"))?.string() },
}));
await nc.close();
`;

Deno.test("nats client on Bun: the @nats-io packages import and work against nats-server", async () => {
  await using server = await startNatsServer();
  const dir = await Deno.makeTempDir({ prefix: "perch-bun-nats-" });
  try {
    await Deno.writeTextFile(join(dir, "probe.ts"), PROBE);
    let output: Deno.CommandOutput;
    try {
      output = await new Deno.Command("bun", {
        args: ["run", "probe.ts", server.url],
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
    assert.ok(output.success, `bun failed (exit ${output.code}):\n${stdout}\n${stderr}`);
    assert.deepEqual(JSON.parse(stdout), {
      runtime: "bun",
      reply: "ping",
      header: "yes",
      ack: { stream: "PROBE", seq: 1 },
      kv: { revision: 1, updated: 2, stale: "refused", value: "v2" },
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
