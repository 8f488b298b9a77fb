/**
 * The dashboard's Kafka bridge and agents pages and the bans on its clients page, in headless
 * Chromium against a real broker and admin API with the bridge (Kafka is the wire-level test server
 * of `test/helpers/kafka/`) and agent mode, and real MQTT clients. One browser for the file; each
 * step has its own broker and a fresh browser context.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Browser, Page } from "puppeteer-core";
import type { ConfigInput } from "../../src/config/mod.ts";
import { PacketType, ReasonCode } from "../../src/codec/mod.ts";
import { body, startAdmin, type TestAdmin } from "../helpers/admin.ts";
import { launchBrowser, openPage } from "../helpers/browser.ts";
import { logInWithPassword, visit, waitForText, waitUntil } from "../helpers/dashboard.ts";
import { startKafkaTestServer } from "../helpers/kafka/mod.ts";
import { legacyConnect, trailerOf } from "../helpers/legacy_connect.ts";
import { TestClient } from "../helpers/test_client.ts";

/** Lets clients publish to `$queue/...`, which only a rule grants. */
const QUEUE_RULE = { permission: "allow", action: "publish", topic: "$queue/#" } as const;

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

/** Columns of the mappings table. */
const KAFKA_TOPIC = 2;
const PRODUCED = 6;
const BUFFERED = 9;

Deno.test("dashboard: Kafka bridge, agents and bans", async (t) => {
  const chromium = await launchBrowser();
  const { browser } = chromium;
  try {
    await t.step(
      "an admin adds a mapping after the API's objection while Kafka is down; it fills once Kafka is up",
      async () => {
        const kafka = await startKafkaTestServer();
        await kafka.stop();
        try {
          const config: ConfigInput = {
            acl: { rules: [QUEUE_RULE] },
            bridge: {
              kafka: {
                brokers: [kafka.bootstrap],
                retry: { initialDelay: "50ms", maxDelay: "500ms" },
                mappings: [{ name: "events", filter: "event", kafkaTopic: "events" }],
              },
            },
          };
          await withDashboard(browser, config, async (admin, page) => {
            await logInWithPassword(page, admin.url!, "ops");
            await visit(page, "bridges");
            await page.select("#refresh", "1");
            await page.waitForSelector('[data-bridge-state="disconnected"]');
            const events = await rowText(page, "events");
            assert.match(events[0], /config file/);
            assert.equal(events.at(-1), "read-only");
            assert.equal(await page.$('tr[data-key="events"] [data-action]'), null);

            await page.type('#mapping-form [name="name"]', "orders");
            await page.type('#mapping-form [name="filter"]', "orders/#");
            await page.type('#mapping-form [name="kafkaTopic"]', "orders v2");
            await page.locator('#mapping-form button[type="submit"]').click();
            await page.waitForSelector('[data-error-for="kafkaTopic"]:not(:empty)');
            const objection = await page.$eval(
              '[data-error-for="kafkaTopic"]',
              (e) => e.textContent,
            );
            assert.match(objection!, /expected a Kafka topic name/);

            await page.locator('#mapping-form [name="kafkaTopic"]').fill("orders");
            await page.select('#mapping-form [name="format"]', "json");
            await page.locator('#mapping-form button[type="submit"]').click();
            await page.waitForSelector('tr[data-key="orders"]');
            const orders = await rowText(page, "orders");
            assert.deepEqual(orders.slice(0, 6), [
              "orders",
              "orders/#",
              "orders",
              "{topic}",
              "json (base64)",
              "no",
            ]);
            const listed = await body<{ data: { name: string; source: string }[] }>(
              await admin.fetch("/api/v1/bridges"),
            );
            assert.deepEqual(listed.data.map((m) => [m.name, m.source]), [
              ["events", "config"],
              ["orders", "api"],
            ]);

            // What a client publishes waits in the outbox while Kafka is down, and goes once
            // Kafka is back.
            const { client } = await TestClient.connect(admin.server.port, {
              clientId: "till-3",
              version: 5,
            });
            try {
              const ack = await client.publish("$queue/orders/17", '{"total": 12.5}', { qos: 1 });
              assert.equal(ack?.type === PacketType.PUBACK && ack.reasonCode, 0);
            } finally {
              await client.disconnect();
            }
            await waitForText(page, '[data-stat="buffered"]', "1");
            await waitUntil(
              page,
              `document.querySelectorAll('tr[data-key="orders"] td')[${BUFFERED}]?.textContent.startsWith("1 (")`,
            );
            await kafka.start();
            await page.waitForSelector('[data-bridge-state="connected"]');
            await waitForCell(page, "orders", PRODUCED, "1");
            await waitForCell(page, "orders", BUFFERED, "0");
            const [record] = await kafka.waitForRecords("orders", 1);
            assert.equal(new TextDecoder().decode(record.key!), "orders/17");

            await page.locator('tr[data-key="orders"] [data-action="edit-mapping"]').click();
            await page.waitForSelector('#mapping-form [name="name"]:disabled');
            await page.locator('#mapping-form [name="kafkaTopic"]').fill("orders-v2");
            await page.locator('#mapping-form button[type="submit"]').click();
            await waitForCell(page, "orders", KAFKA_TOPIC, "orders-v2");

            await page.locator('tr[data-key="orders"] [data-action="delete-mapping"]').click();
            await page.waitForSelector('tr[data-key="orders"]', { hidden: true });
            assert.equal((await admin.fetch("/api/v1/bridges/orders")).status, 404);
          });
        } finally {
          await kafka.close();
        }
      },
    );

    await t.step(
      "without the bridge and agent mode their pages say so and offer nothing",
      async () => {
        await withDashboard(browser, {}, async (admin, page) => {
          await logInWithPassword(page, admin.url!, "ops");
          await visit(page, "bridges");
          await page.waitForSelector('[data-off="bridge"]');
          assert.equal(await page.$("#mapping-form"), null);
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

            // A connected agent's details on the clients page carry its host facts.
            await visit(page, "clients");
            await page.locator('tr[data-key="gw-7"]').click();
            await page.waitForSelector('[data-agent-facts="gw-7"]');
            const client7 = await page.$eval('[data-client="gw-7"]', (e) => e.textContent!);
            assert.ok(client7.includes(`Node${admin.server.config.node.id}`), client7);
            const hostFacts = await page.$eval('[data-agent-facts="gw-7"]', (e) => e.textContent!);
            for (const fact of ["gw-7.plant", "debian", "arm64"]) {
              assert.ok(hostFacts.includes(fact), `${fact} in ${hostFacts}`);
            }
            await client.disconnect();
          } finally {
            await legacy.destroy();
          }
        });
      },
    );

    await t.step(
      "a ban made from the clients page refuses the client's next CONNECT until lifted",
      async () => {
        await withDashboard(browser, {}, async (admin, page) => {
          const port = admin.server.port;
          const { client } = await TestClient.connect(port, { clientId: "pest-9", version: 5 });
          try {
            await logInWithPassword(page, admin.url!, "ops");
            await visit(page, "clients");
            await page.waitForSelector(".bans .empty");
            await page.locator('tr[data-key="pest-9"]').click();
            await page.waitForSelector('[data-client="pest-9"]');
            await page.select('.actions [name="ban"]', "3600");
            await waitForText(page, '[data-action="kick"]', "Kick and ban");
            await page.locator('[data-action="kick"]').click();
            const disconnect = await client.expect(PacketType.DISCONNECT);
            assert.equal(disconnect.reasonCode, ReasonCode.AdministrativeAction);
            await client.closed;
            await page.waitForSelector('.bans tr[data-key="clientId pest-9"]');
            const ban = await rowText(page, "clientId pest-9");
            assert.deepEqual([ban[0], ban[1], ban[3], ban[5]], [
              "client id",
              "pest-9",
              "kicked",
              "ops",
            ]);
          } finally {
            await client.destroy();
          }

          const refused = await TestClient.connect(port, { clientId: "pest-9", version: 5 });
          assert.equal(refused.connack.reasonCode, ReasonCode.Banned);
          await refused.client.closed;

          // A range that is not one is refused next to its field.
          await page.select('#add-ban [name="kind"]', "address");
          await page.type('#add-ban [name="value"]', "10.0.0.0/99");
          await page.locator('#add-ban button[type="submit"]').click();
          await page.waitForSelector('#add-ban [data-error-for="value"]:not(:empty)');
          await page.locator('#add-ban [name="value"]').fill("10.0.0.0/8");
          await page.locator('#add-ban button[type="submit"]').click();
          await page.waitForSelector('.bans tr[data-key="address 10.0.0.0/8"]');

          await page.locator('.bans tr[data-key="clientId pest-9"] [data-action="lift-ban"]')
            .click();
          await page.waitForSelector('.bans tr[data-key="clientId pest-9"]', { hidden: true });
          const back = await TestClient.connect(port, { clientId: "pest-9", version: 5 });
          assert.equal(back.connack.reasonCode, 0);
          await back.client.disconnect();
        });
      },
    );

    await t.step(
      "a viewer sees the agents, the bridge and the bans but no write controls",
      async () => {
        const kafka = await startKafkaTestServer();
        await kafka.stop();
        try {
          const config: ConfigInput = {
            agent: { enabled: true },
            bridge: { kafka: { brokers: [kafka.bootstrap] } },
          };
          await withDashboard(browser, config, async (admin, page) => {
            const created = await admin.fetch("/api/v1/bridges", {
              method: "POST",
              body: JSON.stringify({ name: "orders", filter: "orders/#", kafkaTopic: "orders" }),
            });
            assert.equal(created.status, 201);
            await admin.fetch("/api/v1/bans", {
              method: "POST",
              body: JSON.stringify({ kind: "username", value: "mallory" }),
            });
            const { client } = await TestClient.connect(admin.server.port, {
              clientId: "gw-1",
              version: 5,
              properties: { userProperties: [["platform", "debian"]] },
            });
            await client.subscribe("agents/gw-1", 1);
            await client.disconnect();

            await logInWithPassword(page, admin.url!, "watcher");
            const writeControls = () =>
              page.$$eval(
                "[data-action], #mapping-form, #add-ban",
                (found) => found.map((e) => e.outerHTML.slice(0, 80)),
              );
            await visit(page, "agents");
            await waitUntil(
              page,
              `document.querySelector('tr[data-key="gw-1"] td:nth-child(2)')?.textContent.startsWith("offline")`,
            );
            await page.locator('tr[data-key="gw-1"]').click();
            await page.waitForSelector('[data-agent="gw-1"]');
            assert.deepEqual(await writeControls(), [], "write controls on agents");

            await visit(page, "bridges");
            await page.waitForSelector('tr[data-key="orders"]');
            assert.deepEqual(await writeControls(), [], "write controls on the bridge");

            await visit(page, "clients");
            await page.waitForSelector('.bans tr[data-key="username mallory"]');
            assert.deepEqual(await writeControls(), [], "write controls on clients");
          });
        } finally {
          await kafka.close();
        }
      },
    );
  } finally {
    await chromium.close();
  }
});
