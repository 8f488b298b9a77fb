import assert from "node:assert/strict";
import { body, startAdmin } from "../helpers/admin.ts";
import { TestClient } from "../helpers/test_client.ts";

interface Page {
  data: { clientId: string; filter: string; qos: number }[];
  meta: { count: number };
}

Deno.test("GET /api/v1/subscriptions lists every session's subscriptions with filters", async () => {
  const t = await startAdmin({ http: true });
  try {
    const { client: a } = await TestClient.connect(t.server.port, { clientId: "a", version: 5 });
    const { client: b } = await TestClient.connect(t.server.port, { clientId: "b", version: 5 });
    await a.subscribe([{ filter: "x/#", qos: 1 }, { filter: "$share/workers/jobs", qos: 1 }]);
    await b.subscribe([{ filter: "x/#", qos: 0 }]);
    const list = async (query = "") =>
      (await body<Page>(await t.fetch(`/api/v1/subscriptions${query}`))).data
        .map((s) => `${s.clientId} ${s.filter} ${s.qos}`);
    assert.deepEqual(await list(), ["a $share/workers/jobs 1", "a x/# 1", "b x/# 0"]);
    assert.deepEqual(await list("?clientId=b"), ["b x/# 0"]);
    assert.deepEqual(await list(`?filter=${encodeURIComponent("x/#")}`), ["a x/# 1", "b x/# 0"]);
    assert.deepEqual(await list("?qos=0"), ["b x/# 0"]);
    assert.deepEqual(await list("?share=workers"), ["a $share/workers/jobs 1"]);
    assert.deepEqual(await list("?limit=1&page=3"), ["b x/# 0"]);
    const bad = await t.request("/api/v1/subscriptions?qos=3");
    assert.equal(bad.status, 400);
    assert.deepEqual((await body(bad)).issues, [{ field: "qos", message: "expected 0, 1 or 2" }]);
    await a.disconnect();
    await b.disconnect();
  } finally {
    await t.close();
  }
});
