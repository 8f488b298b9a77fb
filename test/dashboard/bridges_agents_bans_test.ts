/**
 * The dashboard's agents page, in headless Chromium against a real broker and admin API with agent
 * mode, and real MQTT clients. One browser for the file; each step has its own broker and a fresh
 * browser context.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Browser, Page } from "puppeteer-core";
import type { ConfigInput } from "../../src/config/mod.ts";
import { PacketType } from "../../src/codec/mod.ts";
import { startAdmin, type TestAdmin } from "../helpers/admin.ts";
import { launchBrowser, openPage } from "../helpers/browser.ts";
import { logInWithPassword, visit, waitUntil } from "../helpers/dashboard.ts";
import { legacyConnect, trailerOf } from "../helpers/legacy_connect.ts";
import { TestClient } from "../helpers/test_client.ts";

/** Runs `scenario` with a fresh admin API and browser page; fails on any script or CSP error. */
async function withDashboard(
  browser: Browser,
  config: ConfigInput,
  scenario: (admin: TestAdmin, page: Page) => Promise<void>,
): Promise<void> {
  const admin = await startAdmin({ http: true, users: true, config });
  const { page, problems, close } = await openPage(browser);
  try {
    await scenario(admin, page);
    assert.deepEqual(problems, []);
  } finally {
    await close();
    await admin.close();
  }
}

/** The text of each cell of the table row whose key is `key`. */
function rowText(page: Page, key: string): Promise<string[]> {
  return page.$$eval(`tr[data-key="${key}"] td`, (cells) => cells.map((c) => c.textContent!));
}

/** Waits until the cell of `key`'s row in column `column` (from 0) reads `text`. */
function waitForCell(page: Page, key: string, column: number, text: string): Promise<void> {
  return waitUntil(
    page,
    `document.querySelectorAll('tr[data-key="${key}"] td')[${column}]?.textContent === ${
      JSON.stringify(text)
    }`,
  );
}

Deno.test("dashboard: agents", async (t) => {
  const chromium = await launchBrowser();
  const { browser } = chromium;
  try {
    await t.step(
      "without agent mode the agents page says so and offers nothing",
      async () => {
        await withDashboard(browser, {}, async (admin, page) => {
          await logInWithPassword(page, admin.url!, "ops");
          await visit(page, "agents");
          await page.waitForSelector('[data-off="agents"]');
          assert.equal(await page.$("table.list"), null);
        });
      },
    );

    await t.step(
      "an agent appears online, goes offline when it disconnects, and an admin forgets it",
      async () => {
        const config: ConfigInput = { agent: { enabled: true, legacyConnectInfo: true } };
        await withDashboard(browser, config, async (admin, page) => {
          const port = admin.server.port;
          // smq's agent library: MQTT 3.1.1 with the host facts in a trailer after the payload.
          const legacy = await TestClient.open(port);
          const facts = {
            host_name: "runner-1",
            intranet_ip: "10.0.4.11",
            platform: "ubuntu",
            arch: "amd64",
            os: "linux",
            agent_version: "1.4.2",
          };
          await legacy.sendRaw(legacyConnect("runner-1", trailerOf(JSON.stringify(facts))));
          assert.equal((await legacy.expect(PacketType.CONNACK)).reasonCode, 0);
          await legacy.subscribe("agents/runner-1", 1);
          try {
            await logInWithPassword(page, admin.url!, "ops");
            await visit(page, "agents");
            await page.select("#refresh", "1");
            await page.waitForSelector('tr[data-key="runner-1"]');
            await waitForCell(page, "runner-1", 1, "online");

            const { client } = await TestClient.connect(port, {
              clientId: "gw-7",
              version: 5,
              properties: {
                userProperties: [["host_name", "gw-7.plant"], ["platform", "debian"], [
                  "arch",
                  "arm64",
                ]],
              },
            });
            await client.subscribe("agents/gw-7", 1);
            await waitForCell(page, "gw-7", 1, "online");
            const row = await rowText(page, "gw-7");
            assert.deepEqual(row.slice(0, 9), [
              "gw-7",
              "online",
              "gw-7.plant",
              "–",
              "–",
              "debian",
              "arm64",
              "–",
              "–",
            ]);
            assert.equal(row[9], admin.server.config.node.id);

            await page.type('.filters [name="platform"]', "ubuntu");
            await page.locator(".filters button[type=submit]").click();
            await page.waitForSelector('tr[data-key="gw-7"]', { hidden: true });
            await page.locator('tr[data-key="runner-1"]').click();
            await page.waitForSelector('[data-agent="runner-1"]');
            const details = await page.$eval('[data-agent="runner-1"]', (e) => e.textContent!);
            for (const fact of ["10.0.4.11", "1.4.2", "MQTT 3.1.1", "online since"]) {
              assert.ok(details.includes(fact), `${fact} in ${details}`);
            }
            // An online agent cannot be forgotten.
            assert.equal(await page.$('[data-action="forget-agent"]'), null);

            await legacy.disconnect();
            await waitUntil(
              page,
              `document.querySelector('tr[data-key="runner-1"] td:nth-child(2)')?.textContent.startsWith("offline")`,
            );
            await page.waitForSelector('[data-action="forget-agent"]');
            assert.match(
              await page.$eval('[data-agent="runner-1"]', (e) => e.textContent!),
              /offline since .* \(client_disconnect\)/,
            );
            await page.locator('[data-action="forget-agent"]').click();
            await page.waitForSelector('tr[data-key="runner-1"]', { hidden: true });
            await page.waitForSelector(".details .notice.good");
            assert.equal((await admin.fetch("/api/v1/agents/runner-1")).status, 404);

            await client.disconnect();
          } finally {
            await legacy.destroy();
          }
        });
      },
    );
  } finally {
    await chromium.close();
  }
});
