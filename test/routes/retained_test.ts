import assert from "node:assert/strict";
import { body, startAdmin } from "../helpers/admin.ts";
import { TestClient } from "../helpers/test_client.ts";

interface Page {
  data: { topic: string; payloadSize: number; publisher: string; qos: number }[];
  meta: { count: number; hasNext: boolean };
}

Deno.test("GET /api/v1/retained lists retained messages matching a filter, paged", async () => {
  const t = await startAdmin({ http: true });
  try {
    const { client } = await TestClient.connect(t.server.port, { clientId: "pub" });
    for (const topic of ["rooms/1/temp", "rooms/2/temp", "rooms/2/hum", "other"]) {
      await client.publish(topic, `v-${topic}`, { qos: 1, retain: true });
    }
    const list = async (query: string) =>
      await body<Page>(await t.fetch(`/api/v1/retained${query}`));
    const all = await list("");
    assert.deepEqual(all.data.map((m) => m.topic), [
      "other",
      "rooms/1/temp",
      "rooms/2/hum",
      "rooms/2/temp",
    ]);
    assert.equal(all.data[0].publisher, "pub");
    assert.equal(all.data[0].payloadSize, "v-other".length);
    const temps = await list(`?filter=${encodeURIComponent("rooms/+/temp")}`);
    assert.deepEqual(temps.data.map((m) => m.topic), ["rooms/1/temp", "rooms/2/temp"]);
    const page = await list(`?filter=${encodeURIComponent("rooms/#")}&limit=2&page=2`);
    assert.deepEqual(page.data.map((m) => m.topic), ["rooms/2/temp"]);
    assert.deepEqual([page.meta.count, page.meta.hasNext], [3, false]);
    const bad = await t.request(`/api/v1/retained?filter=${encodeURIComponent("a/#/b")}`);
    assert.equal(bad.status, 400);
    assert.equal((await body(bad) as { issues: { field: string }[] }).issues[0].field, "filter");
    await client.disconnect();
  } finally {
    await t.close();
  }
});

Deno.test("GET /api/v1/retained/{topic} returns the payload as UTF-8 or base64", async () => {
  const t = await startAdmin();
  try {
    const { client } = await TestClient.connect(t.server.port, { clientId: "pub", version: 5 });
    await client.publish("text/t", "héllo", {
      qos: 1,
      retain: true,
      properties: { contentType: "text/plain", userProperties: [["k", "v"]] },
    });
    await client.publish("bin/b", new Uint8Array([0xff, 0x00, 0x80]), { qos: 1, retain: true });
    const textReply = await body(
      await t.request(`/api/v1/retained/${encodeURIComponent("text/t")}`),
    );
    assert.equal(textReply.payload, "héllo");
    assert.equal(textReply.encoding, "utf8");
    assert.deepEqual(textReply.properties, {
      contentType: "text/plain",
      userProperties: [["k", "v"]],
    });
    const forced = await body(await t.request(`/api/v1/retained/text%2Ft?encoding=base64`));
    assert.equal(forced.payload, new TextEncoder().encode("héllo").toBase64());
    const binary = await body(await t.request("/api/v1/retained/bin%2Fb"));
    assert.deepEqual([binary.payload, binary.encoding], ["/wCA", "base64"]);
    const missing = await t.request("/api/v1/retained/nothing%2Fhere");
    assert.equal(missing.status, 404);
    assert.deepEqual(await body(missing), {
      status: 404,
      message: 'No retained message on "nothing/here"',
    });
    const wildcard = await t.request(`/api/v1/retained/${encodeURIComponent("a/+")}`);
    assert.equal(wildcard.status, 400);
    await client.disconnect();
  } finally {
    await t.close();
  }
});

Deno.test("DELETE /api/v1/retained/{topic} removes it, so new subscribers get nothing", async () => {
  const t = await startAdmin({ http: true });
  try {
    const { client } = await TestClient.connect(t.server.port, { clientId: "pub" });
    await client.publish("gone/soon", "x", { qos: 1, retain: true });
    const response = await t.fetch(`/api/v1/retained/${encodeURIComponent("gone/soon")}`, {
      method: "DELETE",
    });
    assert.equal(response.status, 204);
    const { client: subscriber } = await TestClient.connect(t.server.port, { clientId: "sub" });
    await subscriber.subscribe("gone/#", 1);
    await subscriber.expectNothingPending();
    assert.equal(
      (await t.request("/api/v1/retained/gone%2Fsoon", { method: "DELETE" })).status,
      404,
    );
    await subscriber.disconnect();
    await client.disconnect();
  } finally {
    await t.close();
  }
});
