/**
 * Overview: every node of the deployment (`/nodes`, one row each, so a cluster lists all of its
 * nodes; one that did not answer shows its state as unreachable and no figures), this node's connections, sessions, subscriptions and retained messages, live charts of
 * messages in and out per second by QoS and of event-loop lag over the last 15 minutes, and the
 * messages dropped by reason.
 *
 * @module
 */

import { api } from "../api.js";
import { lineChart } from "../chart.js";
import { h, table } from "../dom.js";
import {
  formatBytes,
  formatCount,
  formatDuration,
  formatMs,
  formatRate,
  formatTime,
} from "../format.js";
import { History } from "../history.js";
import { REFRESH_SECONDS, refresher } from "../refresh.js";

const WINDOW_MS = 15 * 60_000;
const QOS = [0, 1, 2];

/** Drop counters of `/stats` and how the page names them. */
const DROP_REASONS = [
  ["expired", "Expired before delivery"],
  ["queueFull", "Session queue full"],
  ["slowConsumer", "Slow consumer"],
  ["tooLargeForClient", "Too large for the client"],
  ["notAuthorizedToRead", "Subscriber not authorized"],
  ["publishDenied", "Publish denied by the ACL"],
  ["notStored", "Not stored (never acknowledged)"],
];

/** The numbers of one refresh the history keeps. */
function sampleOf(stats, node) {
  const values = {
    lag: node?.eventLoopLagMs ?? 0,
    lagMax: node?.eventLoopLagMaxMs ?? 0,
  };
  for (const qos of QOS) {
    values[`received${qos}`] = stats.messages.received[`qos${qos}`];
    values[`sent${qos}`] = stats.messages.sent[`qos${qos}`];
  }
  for (const [reason] of DROP_REASONS) values[`dropped.${reason}`] = stats.dropped[reason];
  return values;
}

/** A figure of a node, or "–" for one that did not answer (its figures are null). */
function unknownOr(value, format) {
  return value === null || value === undefined ? "–" : format(value);
}

function tile(label, stat) {
  const value = h("span", { class: "tile-value", data: { stat }, text: "–" });
  return {
    element: h("div", { class: "tile" }, value, h("span", { class: "tile-label", text: label })),
    value,
  };
}

export default {
  render(container) {
    const history = new History(WINDOW_MS, (WINDOW_MS / 1000) / REFRESH_SECONDS[0] + 1);

    const tiles = {
      connected: tile("Connected clients", "connected"),
      sessions: tile("Sessions", "sessions"),
      subscriptions: tile("Subscriptions", "subscriptions"),
      retained: tile("Retained messages", "retained"),
      inflight: tile("Inflight", "inflight"),
      queued: tile("Queued", "queued"),
      received: tile("Messages received", "received"),
      sent: tile("Messages sent", "sent"),
    };
    const byQos = (prefix) => QOS.map((qos) => ({ key: `${prefix}${qos}`, label: `QoS ${qos}` }));
    const charts = {
      received: lineChart({
        title: "Messages in per second",
        series: byQos("received"),
        windowMs: WINDOW_MS,
        format: formatRate,
      }),
      sent: lineChart({
        title: "Messages out per second",
        series: byQos("sent"),
        windowMs: WINDOW_MS,
        format: formatRate,
      }),
      lag: lineChart({
        title: "Event-loop lag",
        series: [{ key: "lag", label: "latest" }, { key: "lagMax", label: "max of window" }],
        windowMs: WINDOW_MS,
        format: formatMs,
      }),
    };
    const nodes = h("div", { class: "nodes" });
    const drops = h("div", { class: "drops" });

    const refresh = refresher(async () => {
      const [stats, nodeList] = await Promise.all([api("/stats"), api("/nodes")]);
      show(stats, nodeList);
    });
    container.append(
      h("div", { class: "page-head" }, h("h1", { text: "Overview" }), refresh.controls),
      refresh.problem,
      h("h2", { text: "Nodes" }),
      nodes,
      h("h2", { class: "this-node", text: "This node" }),
      h("div", { class: "tiles" }, Object.values(tiles).map((t) => t.element)),
      h(
        "div",
        { class: "charts" },
        Object.values(charts).map((c) => c.element),
        h("div", { class: "card" }, h("h3", { text: "Dropped messages" }), drops),
      ),
    );

    const show = (stats, nodeList) => {
      const now = Date.now();
      const node = nodeList.find((n) => n.id === stats.node);
      history.record(now, sampleOf(stats, node));
      tiles.connected.value.textContent = formatCount(stats.connections.connected);
      tiles.sessions.value.textContent = formatCount(stats.sessions);
      tiles.subscriptions.value.textContent = formatCount(stats.subscriptions);
      tiles.retained.value.textContent = formatCount(stats.retained);
      tiles.inflight.value.textContent = formatCount(stats.inflight);
      tiles.queued.value.textContent = formatCount(stats.queued);
      const total = (counts) => QOS.reduce((sum, qos) => sum + counts[`qos${qos}`], 0);
      tiles.received.value.textContent = formatCount(total(stats.messages.received));
      tiles.sent.value.textContent = formatCount(total(stats.messages.sent));
      container.querySelector(".this-node").textContent = `This node: ${stats.node}`;

      for (const [name, chart] of Object.entries(charts)) {
        const keys = name === "lag" ? ["lag", "lagMax"] : QOS.map((qos) => `${name}${qos}`);
        const read = (key) => name === "lag" ? history.gauge(key) : history.rate(key);
        chart.update(now, new Map(keys.map((key) => [key, read(key)])));
      }
      nodes.replaceChildren(table(
        [
          { label: "Node", value: (n) => n.id },
          {
            label: "State",
            value: (n) =>
              h("span", { class: `state ${n.state === "ready" ? "good" : "bad"}`, text: n.state }),
          },
          { label: "Version", value: (n) => n.version },
          { label: "Backbone", value: (n) => n.backbone },
          {
            label: "Up",
            value: (n) =>
              h("span", { title: formatTime(n.startedAt), text: formatDuration(n.uptimeSeconds) }),
          },
          { label: "Connections", value: (n) => unknownOr(n.connections, formatCount) },
          { label: "Sessions", value: (n) => unknownOr(n.sessions, formatCount) },
          { label: "Subscriptions", value: (n) => unknownOr(n.subscriptions, formatCount) },
          { label: "Retained", value: (n) => unknownOr(n.retained, formatCount) },
          { label: "Memory (RSS)", value: (n) => unknownOr(n.memory?.rss, formatBytes) },
          {
            label: "Event-loop lag",
            value: (n) =>
              n.eventLoopLagMs === null
                ? "–"
                : `${formatMs(n.eventLoopLagMs)} (max ${formatMs(n.eventLoopLagMaxMs)})`,
          },
          {
            label: "Listeners",
            value: (n) =>
              n.listeners.map((l) => `${l.transport} ${l.address}:${l.port}`).join(", "),
          },
        ],
        nodeList,
        { key: (n) => n.id },
      ));
      drops.replaceChildren(table([
        { label: "Reason", value: ([, label]) => label },
        {
          label: "Total",
          value: ([reason]) =>
            h("span", { data: { drop: reason }, text: formatCount(stats.dropped[reason]) }),
        },
        {
          label: "Per second",
          value: ([reason]) => formatRate(history.latestRate(`dropped.${reason}`)),
        },
      ], DROP_REASONS));
    };

    return refresh.stop;
  },
};
