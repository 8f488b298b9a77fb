import assert from "node:assert/strict";
import { body, startAdmin } from "../helpers/admin.ts";

Deno.test("GET /api/v1/nodes describes this node; GET /api/v1/nodes/{id} finds it by id", async () => {
  const t = await startAdmin({ http: true, config: { node: { id: "edge-1" } } });
  try {
    const nodes = await body<Record<string, unknown>[]>(await t.fetch("/api/v1/nodes"));
    assert.equal(nodes.length, 1);
    const node = nodes[0];
    assert.equal(node.id, "edge-1");
    assert.equal(node.state, "ready");
    assert.equal(node.version, "perch test");
    assert.equal(node.backbone, "memory");
    assert.deepEqual(node.listeners, [{
      transport: "tcp",
      address: "127.0.0.1",
      port: t.server.port,
    }]);
    assert.ok((node.memory as { rss: number }).rss > 0);
    assert.equal(typeof node.eventLoopLagMs, "number");
    assert.equal(typeof node.eventLoopLagMaxMs, "number");
    const one = await body(await t.request("/api/v1/nodes/edge-1"));
    assert.deepEqual([one.id, one.startedAt, one.listeners], [
      node.id,
      node.startedAt,
      node.listeners,
    ]);
    const other = await t.request("/api/v1/nodes/edge-2");
    assert.equal(other.status, 404);
    assert.deepEqual(await body(other), { status: 404, message: 'No node "edge-2"' });
  } finally {
    await t.close();
  }
});
