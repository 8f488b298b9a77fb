import assert from "node:assert/strict";
import { healthRoutes, type Readiness } from "../../routes/health.ts";
import { body, startAdmin } from "../helpers/admin.ts";

Deno.test("GET /healthz answers 200 while the process serves", async () => {
  const t = await startAdmin({ http: true });
  try {
    const response = await t.fetch("/healthz", { token: null });
    assert.equal(response.status, 200);
    assert.deepEqual(await body(response), { status: "ok" });
  } finally {
    await t.close();
  }
});

Deno.test("GET /readyz answers 503 until listeners and backbone are ready, then 200", async () => {
  const state: Readiness = { listeners: false, backbone: true };
  const app = healthRoutes(() => ({ ...state }));
  const starting = await app.request("/readyz");
  assert.equal(starting.status, 503);
  assert.deepEqual(await body(starting), {
    status: "not ready",
    checks: { listeners: false, backbone: true },
  });
  state.listeners = true;
  const ready = await app.request("/readyz");
  assert.equal(ready.status, 200);
  assert.deepEqual(await body(ready), {
    status: "ready",
    checks: { listeners: true, backbone: true },
  });
  state.backbone = false; // shutting down
  assert.equal((await app.request("/readyz")).status, 503);
});
