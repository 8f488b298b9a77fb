/**
 * The dashboard in headless Chromium against a real broker and admin API on free ports, with
 * real MQTT clients: what an operator does with it, step by step. One browser for the file; each
 * step has its own broker and a fresh browser context (its own session storage).
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Browser, Page } from "puppeteer-core";
import { PacketType, ReasonCode } from "../../src/codec/mod.ts";
import { ADMIN_TOKEN, body, startAdmin, type TestAdmin } from "../helpers/admin.ts";
import { launchBrowser, openPage } from "../helpers/browser.ts";
import {
  DASHBOARD_PAGES,
  logInWithPassword,
  logInWithToken,
  takeScreenshots,
  visit,
  waitForText,
  waitUntil,
} from "../helpers/dashboard.ts";
import { TestClient } from "../helpers/test_client.ts";

/** Runs `scenario` with a fresh admin API and browser page; fails on any script or CSP error. */
async function withDashboard(
  browser: Browser,
  scenario: (admin: TestAdmin, page: Page) => Promise<void>,
): Promise<void> {
  const admin = await startAdmin({ http: true, users: true });
  const { page, problems, close } = await openPage(browser);
  try {
    await scenario(admin, page);
    assert.deepEqual(problems, []);
  } finally {
    await close();
    await admin.close();
  }
}

Deno.test("dashboard", async (t) => {
  const chromium = await launchBrowser();
  const { browser } = chromium;
  try {
    await t.step(
      "an admin logs in and sees the overview numbers move as a client connects and publishes",
      async () => {
        await withDashboard(browser, async (admin, page) => {
          await logInWithPassword(page, admin.url!, "ops");
          await waitForText(page, '[data-stat="connected"]', "0");
          await waitForText(page, '[data-stat="received"]', "0");
          assert.equal(await page.$eval("#who", (e) => e.textContent), "ops · admin");

          const { client } = await TestClient.connect(admin.server.port, {
            clientId: "mover",
            version: 5,
          });
          try {
            await client.publish("plant/temperature", "21.5", { qos: 1 });
            await client.publish("plant/temperature", "21.7", { qos: 0 });
            await client.publish("plant/pressure", "1.01", { qos: 1 });
            await waitForText(page, '[data-stat="connected"]', "1");
            await waitForText(page, '[data-stat="received"]', "3");
            const node = await page.$eval(
              ".nodes tr[data-key] td:nth-child(2)",
              (e) => e.textContent,
            );
            assert.equal(node, "ready");
          } finally {
            await client.disconnect();
          }
          await waitForText(page, '[data-stat="connected"]', "0");
        });
      },
    );

    await t.step(
      "an admin finds a client by part of its id and kicks it; the client sees DISCONNECT 0x98",
      async () => {
        await withDashboard(browser, async (admin, page) => {
          const { client: bystander } = await TestClient.connect(admin.server.port, {
            clientId: "pump-7",
          });
          const { client } = await TestClient.connect(admin.server.port, {
            clientId: "sensor-42",
            version: 5,
            keepAlive: 30,
          });
          try {
            await client.subscribe("alerts/#", 1);
            await logInWithToken(page, admin.url!, ADMIN_TOKEN);
            await visit(page, "clients");
            await page.waitForSelector('tr[data-key="pump-7"]');
            await page.type('[name="like"]', "sensor");
            await page.locator(".filters button[type=submit]").click();
            await page.waitForSelector('tr[data-key="pump-7"]', { hidden: true });
            await page.locator('tr[data-key="sensor-42"]').click();
            await page.waitForSelector('[data-client="sensor-42"]');
            const details = await page.$eval('[data-client="sensor-42"]', (e) => e.textContent);
            for (const fact of ["MQTT 5.0", "30 s", "alerts/#"]) {
              assert.match(details!, new RegExp(fact));
            }

            await page.locator('[data-action="kick"]').click();
            const disconnect = await client.expect(PacketType.DISCONNECT);
            assert.equal(disconnect.reasonCode, ReasonCode.AdministrativeAction);
            await client.closed;
            await page.waitForSelector(".actions .form-message.good");
            await page.waitForSelector('tr[data-key="sensor-42"]', { hidden: true });
          } finally {
            await client.destroy();
            await bystander.disconnect();
          }
        });
      },
    );

    await t.step(
      "an admin views a retained payload as JSON and hex, and deletes the message",
      async () => {
        await withDashboard(browser, async (admin, page) => {
          const { client } = await TestClient.connect(admin.server.port, {
            clientId: "config-writer",
          });
          try {
            await client.publish("devices/7/config", '{"interval":5}', { qos: 1, retain: true });
            await client.publish("other/topic", "kept", { qos: 1, retain: true });
          } finally {
            await client.disconnect();
          }
          await logInWithPassword(page, admin.url!, "ops");
          await visit(page, "retained");
          await page.type('[name="prefix"]', "devices");
          await page.locator(".filters button[type=submit]").click();
          await page.waitForSelector('tr[data-key="other/topic"]', { hidden: true });
          await page.locator('tr[data-key="devices/7/config"]').click();
          await page.waitForSelector('pre.payload[data-view="json"]');
          assert.equal(
            await page.$eval("pre.payload", (e) => e.textContent),
            '{\n  "interval": 5\n}',
          );
          await page.locator('.tab[data-view="hex"]').click();
          await page.waitForSelector('pre.payload[data-view="hex"]');
          const hex = await page.$eval("pre.payload", (e) => e.textContent!);
          assert.ok(hex.startsWith("00000000  7b 22 69 6e "), hex);

          await page.locator('[data-action="delete-retained"]').click();
          await page.waitForSelector(".details .notice.good");
          await page.waitForSelector('tr[data-key="devices/7/config"]', { hidden: true });
          const left = await body<{ data: { topic: string }[] }>(
            await admin.fetch("/api/v1/retained"),
          );
          assert.deepEqual(left.data.map((m) => m.topic), ["other/topic"]);
        });
      },
    );

    await t.step(
      "an admin adds an ACL rule after the API's objection to its topic, and a publish is refused",
      async () => {
        await withDashboard(browser, async (admin, page) => {
          await logInWithPassword(page, admin.url!, "ops");
          await visit(page, "acl");
          await page.waitForSelector("#rule-form");
          await page.select('#rule-form [name="permission"]', "deny");
          await page.type('#rule-form [name="topic"]', "secret/#/plans");
          await page.locator('#rule-form button[type="submit"]').click();
          await page.waitForSelector('[data-error-for="topic"]:not(:empty)');
          const objection = await page.$eval('[data-error-for="topic"]', (e) => e.textContent);
          assert.match(objection!, /"#" must be the last level/);

          await page.locator('#rule-form [name="topic"]').fill("secret/#");
          await page.locator('#rule-form button[type="submit"]').click();
          await page.waitForSelector('tr[data-key="file-0"]');
          await waitUntil(
            page,
            `document.querySelector('[data-error-for="topic"]').textContent === ""`,
          );

          const { client } = await TestClient.connect(admin.server.port, {
            clientId: "snoop",
            version: 5,
          });
          try {
            const refused = await client.publish("secret/plans", "x", { qos: 1 });
            assert.equal(refused?.type, PacketType.PUBACK);
            assert.equal(refused.reasonCode, ReasonCode.NotAuthorized);
            const allowed = await client.publish("public/news", "y", { qos: 1 });
            assert.equal(allowed?.type === PacketType.PUBACK && allowed.reasonCode < 0x80, true);
          } finally {
            await client.disconnect();
          }
        });
      },
    );

    await t.step("a viewer sees every page but no write controls", async () => {
      await withDashboard(browser, async (admin, page) => {
        const { client } = await TestClient.connect(admin.server.port, {
          clientId: "watched",
          version: 5,
        });
        try {
          await client.subscribe("b/#", 1);
          await client.publish("a/b", "retained", { qos: 1, retain: true });
          await admin.fetch("/api/v1/acl/rules", {
            method: "POST",
            body: JSON.stringify({ permission: "allow", action: "both", topic: "a/#" }),
          });
          await admin.fetch("/api/v1/users", {
            method: "POST",
            body: JSON.stringify({ username: "alice", password: "pw" }),
          });
          await logInWithPassword(page, admin.url!, "watcher");
          assert.equal(await page.$eval("#who", (e) => e.textContent), "watcher · viewer");
          const links = await page.$$eval("#nav a", (links) => links.map((a) => a.textContent));
          assert.deepEqual(links, [
            "Overview",
            "Clients",
            "Agents",
            "Sessions",
            "Subscriptions",
            "Retained",
            "Kafka bridge",
            "Users",
            "ACL",
          ]);

          const writeControls = () =>
            page.$$eval(
              "[data-action], #add-user, #rule-form, form.publish",
              (found) => found.map((e) => e.outerHTML.slice(0, 80)),
            );
          for (
            const [name, row, details] of [
              ["clients", "watched", '[data-client="watched"]'],
              ["sessions", "watched", '[data-session="watched"]'],
              ["retained", "a/b", '[data-topic="a/b"]'],
            ]
          ) {
            await visit(page, name);
            await page.locator(`tr[data-key="${row}"]`).click();
            await page.waitForSelector(details);
            assert.deepEqual(await writeControls(), [], `write controls on ${name}`);
          }
          for (
            const [name, row] of [["subscriptions", "watched b/#"], ["users", "alice"], [
              "acl",
              "file-0",
            ]]
          ) {
            await visit(page, name);
            await page.waitForSelector(`tr[data-key="${row}"]`);
            assert.deepEqual(await writeControls(), [], `write controls on ${name}`);
          }
          // The publish page is not offered, even by its address.
          await page.evaluate(`location.hash = "#/publish"`);
          await page.waitForSelector('.page[data-page="overview"]');
        } finally {
          await client.disconnect();
        }
      });
    });

    await t.step("every page renders; a screenshot of each goes to a folder", async () => {
      const dir = await Deno.makeTempDir({ prefix: "perch_screenshots_" });
      try {
        const files = await takeScreenshots(browser, dir);
        assert.deepEqual(
          files,
          [...DASHBOARD_PAGES, "viewer-clients"].map((name) => `${name}.png`),
        );
        const signature = [0x89, 0x50, 0x4e, 0x47];
        for (const file of files) {
          const png = await Deno.readFile(`${dir}/${file}`);
          assert.deepEqual([...png.subarray(0, 4)], signature, file);
        }
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  } finally {
    await chromium.close();
  }
});
