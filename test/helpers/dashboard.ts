/**
 * Driving the dashboard in a browser: logging in, moving between pages, and the screenshot tour
 * (`deno task screenshots`, and a test step writing to a temp dir) over a broker with some life in
 * it: users, ACL rules, MQTT clients, sessions, retained messages, agents, bans, the Kafka bridge
 * (to the Kafka test server) and a steady trickle of messages.
 *
 * @module
 */

import type { Browser, Page } from "puppeteer-core";
import type { MqttClient } from "mqtt";
import { API_PASSWORD, startAdmin, type TestAdmin } from "./admin.ts";
import { openPage } from "./browser.ts";
import { type KafkaTestServer, startKafkaTestServer } from "./kafka/mod.ts";
import { connect, endAll } from "./mqttjs.ts";

/** The pages in the dashboard's navigation order. */
export const DASHBOARD_PAGES = [
  "overview",
  "clients",
  "agents",
  "sessions",
  "subscriptions",
  "retained",
  "publish",
  "bridges",
  "users",
  "acl",
] as const;

/** Opens the dashboard at `/` and logs in as an API user (`ops` is an admin, `watcher` a viewer). */
export async function logInWithPassword(page: Page, url: string, username: string): Promise<void> {
  await page.goto(`${url}/`);
  await page.waitForSelector("#login-password");
  await page.type("#username", username);
  await page.type("#password", API_PASSWORD);
  await page.locator("#login-password button[type=submit]").click();
  await page.waitForSelector('.page[data-page="overview"]');
}

/** Opens the dashboard at `/` and logs in with a static API token. */
export async function logInWithToken(page: Page, url: string, token: string): Promise<void> {
  await page.goto(`${url}/`);
  await page.waitForSelector("#login-token");
  await page.type("#token", token);
  await page.locator("#login-token button[type=submit]").click();
  await page.waitForSelector('.page[data-page="overview"]');
}

/** Shows a page of the dashboard through its navigation link and waits until its list is there. */
export async function visit(page: Page, name: string): Promise<void> {
  await page.locator(`#nav a[data-page="${name}"]`).click();
  await page.waitForSelector(`.page[data-page="${name}"] h1`);
}

/**
 * Waits until `condition`, JavaScript evaluated in the page, is true (re-evaluated on every
 * animation frame). Given as text: these tests are type-checked without the DOM library.
 */
export async function waitUntil(
  page: Page,
  condition: string,
  options: { timeout?: number } = {},
): Promise<void> {
  await page.waitForFunction(condition, options);
}

/** Waits until the element at `selector` holds exactly `text`. */
export async function waitForText(page: Page, selector: string, text: string): Promise<void> {
  await waitUntil(
    page,
    `document.querySelector(${JSON.stringify(selector)})?.textContent === ${JSON.stringify(text)}`,
  );
}

/** A broker with users, ACL rules, clients, sessions, retained messages and traffic. */
interface DemoBroker {
  admin: TestAdmin;
  close(): Promise<void>;
}

/** Host facts of the demo agents, as MQTT 5 user properties of their CONNECT. */
const DEMO_AGENTS = [
  ["build-runner-1", "runner-1", "10.0.4.11", "ubuntu", "amd64", "1.4.2"],
  ["build-runner-2", "runner-2", "10.0.4.12", "ubuntu", "amd64", "1.4.2"],
  ["edge-gw-7", "gw-7.plant", "192.168.7.1", "debian", "arm64", "1.3.9"],
  ["win-builder", "WIN-BUILD01", "10.0.4.30", "windows", "amd64", "1.4.0"],
].map(([clientId, host, ip, platform, arch, version]) => ({
  clientId,
  userProperties: {
    host_name: host,
    intranet_ip: ip,
    public_ip: "203.0.113.40",
    platform,
    arch,
    os: platform === "windows" ? "windows" : "linux",
    agent_version: version,
  },
}));

async function startDemoBroker(): Promise<DemoBroker> {
  const kafka: KafkaTestServer = await startKafkaTestServer();
  let admin: TestAdmin;
  try {
    admin = await startAdmin({
      http: true,
      users: true,
      config: {
        node: { id: "perch-1" },
        agent: { enabled: true },
        acl: { rules: [{ permission: "allow", action: "publish", topic: "$queue/#" }] },
        bridge: {
          kafka: {
            brokers: [kafka.bootstrap],
            mappings: [{ name: "events", filter: "event/#", kafkaTopic: "events" }],
          },
        },
      },
    });
  } catch (error) {
    await kafka.close();
    throw error;
  }
  const clients: MqttClient[] = [];
  let trafficTimer: ReturnType<typeof setInterval> | undefined;
  try {
    const post = async (path: string, body: unknown) => {
      const response = await admin.fetch(path, { method: "POST", body: JSON.stringify(body) });
      if (!response.ok) {
        throw new Error(`POST ${path}: ${response.status} ${await response.text()}`);
      }
    };
    for (const username of ["alice", "sensor-fleet", "grafana"]) {
      await post("/api/v1/users", { username, password: `${username}-password` });
    }
    await post("/api/v1/acl/rules", {
      permission: "allow",
      action: "both",
      topic: "sensors/%c/#",
      users: ["sensor-fleet"],
    });
    await post("/api/v1/acl/rules", { permission: "deny", action: "publish", topic: "$SYS/#" });
    await post("/api/v1/acl/rules", {
      permission: "allow",
      action: "subscribe",
      topic: "alerts/#",
      users: ["alice"],
      clients: ["ops-console"],
    });
    const server = admin.server;
    for (const clientId of ["sensor-1", "sensor-2", "sensor-3"]) {
      clients.push(
        (await connect(server, {
          clientId,
          username: "sensor-fleet",
          password: "sensor-fleet-password",
          protocolVersion: 5,
        })).client,
      );
    }
    const console = (await connect(server, {
      clientId: "ops-console",
      username: "alice",
      password: "alice-password",
      protocolVersion: 5,
      keepalive: 30,
    })).client;
    clients.push(console);
    await console.subscribeAsync({ "sensors/#": { qos: 1 }, "alerts/#": { qos: 2 } });
    const legacy = (await connect(server, { clientId: "pump-7", protocolVersion: 4 })).client;
    clients.push(legacy);
    await legacy.subscribeAsync("devices/pump-7/commands", { qos: 1 });
    // A persistent session whose client has gone: it shows as disconnected.
    const backend = (await connect(server, {
      clientId: "billing-backend",
      clean: false,
      protocolVersion: 5,
      properties: { sessionExpiryInterval: 3600 },
    })).client;
    await backend.subscribeAsync("$share/billing/sensors/+/energy", { qos: 1 });
    await backend.endAsync();

    for (const { clientId, userProperties } of DEMO_AGENTS) {
      const agent = (await connect(server, {
        clientId,
        protocolVersion: 5,
        properties: { userProperties },
      })).client;
      await agent.subscribeAsync(`agents/${clientId}`, { qos: 1 });
      if (clientId === "win-builder") await agent.endAsync();
      else clients.push(agent);
    }
    await post("/api/v1/bans", {
      kind: "address",
      value: "198.51.100.0/24",
      reason: "credential stuffing",
    });
    await post("/api/v1/bans", { kind: "clientId", value: "old-firmware-3", duration: 86_400 });

    await post("/api/v1/bridges", {
      name: "telemetry",
      filter: "sensors/+/temperature",
      kafkaTopic: "telemetry",
      format: "json",
      payloadEncoding: "utf8",
      copy: true,
    });
    await post("/api/v1/bridges", {
      name: "energy",
      filter: "sensors/+/energy",
      kafkaTopic: "energy",
      key: "{clientId}",
      copy: true,
    });
    await post("/api/v1/bridges", { name: "results", filter: "results", kafkaTopic: "results" });
    await console.publishAsync("$queue/event/door-opened", '{"door": 3}', { qos: 1 });

    const [sensor1, sensor2] = clients;
    await sensor1.publishAsync(
      "sensors/sensor-1/config",
      JSON.stringify({ interval: 5, unit: "celsius", thresholds: { high: 28.5, low: 4 } }),
      { qos: 1, retain: true, properties: { contentType: "application/json" } },
    );
    await sensor2.publishAsync("sensors/sensor-2/status", "online", { qos: 1, retain: true });
    await admin.fetch("/api/v1/publish", {
      method: "POST",
      body: JSON.stringify({
        topic: "devices/pump-7/firmware",
        payload: btoa(String.fromCharCode(0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, 0, 0, 0x3e, 0xff)),
        encoding: "base64",
        retain: true,
      }),
    });
    // A steady trickle of telemetry at QoS 0 and 1, so the charts have something to draw.
    let tick = 0;
    trafficTimer = setInterval(() => {
      tick++;
      for (const [index, sensor] of clients.slice(0, 3).entries()) {
        const reading = JSON.stringify({ t: 20 + ((tick + index * 7) % 11) / 2 });
        sensor.publish(`sensors/sensor-${index + 1}/temperature`, reading, { qos: 0 });
        if (tick % 3 === index) {
          sensor.publish(`sensors/sensor-${index + 1}/energy`, "1.2", { qos: 1 });
        }
      }
    }, 100);
  } catch (error) {
    clearInterval(trafficTimer);
    await endAll(clients);
    await admin.close();
    await kafka.close();
    throw error;
  }
  return {
    admin,
    async close() {
      clearInterval(trafficTimer);
      await endAll(clients);
      await admin.close();
      await kafka.close();
    },
  };
}

/** Writes `name.png` of the whole page into `dir`. */
async function shoot(page: Page, dir: string, name: string): Promise<void> {
  await page.screenshot({ path: `${dir}/${name}.png`, fullPage: true });
}

/**
 * Takes a screenshot of every page of the dashboard, each showing what it is for (details open,
 * a payload shown, a publish done, a validation message), and one of the viewer's clients page,
 * into `dir`. The overview is taken once its charts hold `chartPoints` samples, one a second.
 * Returns the file names.
 */
export async function takeScreenshots(
  browser: Browser,
  dir: string,
  { chartPoints = 6 }: { chartPoints?: number } = {},
): Promise<string[]> {
  const demo = await startDemoBroker();
  const { page, problems, close } = await openPage(browser);
  try {
    const url = demo.admin.url!;
    await logInWithPassword(page, url, "ops");
    await page.select("#refresh", "1");
    await waitUntil(
      page,
      `[...document.querySelectorAll(".chart")].every((chart) => chart.dataset.points >= ${chartPoints})`,
      // One sample a second, and the page's usual patience on top.
      { timeout: chartPoints * 1000 + 30_000 },
    );
    await shoot(page, dir, "overview");

    await visit(page, "clients");
    await page.locator('tr[data-key="ops-console"]').click();
    await page.waitForSelector('[data-client="ops-console"]');
    await page.waitForSelector('.bans tr[data-key="address 198.51.100.0/24"]');
    await shoot(page, dir, "clients");

    await visit(page, "agents");
    await page.locator('tr[data-key="win-builder"]').click();
    await page.waitForSelector('[data-action="forget-agent"]');
    await shoot(page, dir, "agents");

    await visit(page, "sessions");
    await page.locator('tr[data-key="billing-backend"]').click();
    await page.waitForSelector('[data-session="billing-backend"]');
    await shoot(page, dir, "sessions");

    await visit(page, "subscriptions");
    await page.waitForSelector("table.list");
    await shoot(page, dir, "subscriptions");

    await visit(page, "retained");
    await page.locator('tr[data-key="sensors/sensor-1/config"]').click();
    await page.waitForSelector('pre.payload[data-view="json"]');
    await shoot(page, dir, "retained");

    await visit(page, "publish");
    await page.type('[name="topic"]', "alerts/fire");
    await page.type('[name="payload"]', '{"building": 4, "level": "evacuate"}');
    await page.select('[name="qos"]', "1");
    await page.type('[name="contentType"]', "application/json");
    await page.locator(".publish fieldset button.quiet").click();
    await page.type(".pair .name", "origin");
    await page.type(".pair .value", "dashboard");
    await page.locator('.publish button[type="submit"]').click();
    await page.waitForSelector(".publish .form-message.good");
    await shoot(page, dir, "publish");

    await visit(page, "bridges");
    await page.waitForSelector('[data-bridge-state="connected"]');
    await waitUntil(
      page,
      `[...document.querySelectorAll('tr[data-key="telemetry"] td')][6]?.textContent !== "0"`,
    );
    await page.locator('tr[data-key="energy"] [data-action="edit-mapping"]').click();
    await page.locator('#mapping-form [name="kafkaTopic"]').fill("energy readings");
    await page.locator('#mapping-form button[type="submit"]').click();
    await page.waitForSelector('[data-error-for="kafkaTopic"]:not(:empty)');
    await shoot(page, dir, "bridges");

    await visit(page, "users");
    await page.waitForSelector('tr[data-key="alice"]');
    await shoot(page, dir, "users");

    await visit(page, "acl");
    await page.waitForSelector("#rule-form");
    await page.type('#rule-form [name="topic"]', "plant/#/valves");
    await page.locator('#rule-form button[type="submit"]').click();
    await page.waitForSelector('[data-error-for="topic"]:not(:empty)');
    await shoot(page, dir, "acl");

    await page.locator("#logout").click();
    await logInWithPassword(page, url, "watcher");
    await visit(page, "clients");
    await page.locator('tr[data-key="edge-gw-7"]').click();
    await page.waitForSelector('[data-agent-facts="edge-gw-7"]');
    await shoot(page, dir, "viewer-clients");
    if (problems.length > 0) throw new Error(`The dashboard reported: ${problems.join("\n")}`);
    return [...DASHBOARD_PAGES, "viewer-clients"].map((name) => `${name}.png`);
  } finally {
    await close();
    await demo.close();
  }
}
