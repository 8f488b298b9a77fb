/**
 * Agents (agent mode): the agents of the whole cluster with their host facts, state, node and
 * connection time, filtered by state and platform and refreshed every few seconds; one agent's
 * details; admins forget an offline agent. Without agent mode the page says so.
 *
 * @module
 */

import { api, segment } from "../api.js";
import { facts, field, formMessage, h, pager, say, table } from "../dom.js";
import { formatTime, protocolName } from "../format.js";
import { refresher } from "../refresh.js";

const PAGE_SIZE = 50;

/** An agent's state as a coloured word; an offline one's with since when. */
function stateOf(agent) {
  if (agent.state === "online") return h("span", { class: "state good", text: "online" });
  return [
    h("span", { class: "state off", text: "offline" }),
    h("small", { class: "muted", text: ` since ${formatTime(agent.since)}` }),
  ];
}

/** A host fact the agent did not send shows as a dash. */
const fact = (value) => value ?? "–";

/** The host facts of an agent, shared with a client's details. */
export function agentFacts(agent) {
  return [
    ["Host name", fact(agent.hostName)],
    ["Intranet IP", fact(agent.intranetIp)],
    ["Public IP", fact(agent.publicIp)],
    ["Platform", fact(agent.platform)],
    ["Arch", fact(agent.arch)],
    ["OS", fact(agent.os)],
    ["Agent version", fact(agent.agentVersion)],
  ];
}

export default {
  render(container, { canWrite }) {
    const results = h("div", { class: "results" });
    const details = h("div", { class: "details" });
    let page = 1;
    /** The agent whose details are open, as last shown. */
    let shown;

    const form = h(
      "form",
      {
        class: "filters",
        on: {
          submit: (event) => {
            event.preventDefault();
            page = 1;
            refresh.now();
          },
        },
      },
      field(
        "State",
        "state",
        h(
          "select",
          { name: "state" },
          h("option", { value: "", text: "online or offline" }),
          h("option", { value: "online", text: "online" }),
          h("option", { value: "offline", text: "offline" }),
        ),
      ),
      field(
        "Platform",
        "platform",
        h("input", { name: "platform", type: "search", placeholder: "e.g. ubuntu" }),
      ),
      h("button", { type: "submit", text: "Search" }),
      formMessage(),
    );

    const refresh = refresher(load, { seconds: 5 });
    container.append(
      h("div", { class: "page-head" }, h("h1", { text: "Agents" }), refresh.controls),
      refresh.problem,
      form,
      results,
      details,
    );

    async function load() {
      let reply;
      try {
        reply = await api("/agents", {
          query: {
            state: form.state.value,
            platform: form.platform.value.trim(),
            page,
            limit: PAGE_SIZE,
          },
        });
      } catch (error) {
        // The API answers 404 to every request without agent mode.
        if (error.status !== 404) throw error;
        refresh.stop();
        form.hidden = true;
        results.replaceChildren(
          h("p", {
            class: "notice",
            data: { off: "agents" },
            text:
              "Agent mode is off: set agent.enabled in the configuration to follow the clients that subscribe to agents/{their client id}.",
          }),
        );
        return;
      }
      results.replaceChildren(
        table(
          [
            { label: "Client id", value: (a) => a.clientId },
            { label: "State", value: stateOf },
            { label: "Host name", value: (a) => fact(a.hostName) },
            { label: "Intranet IP", value: (a) => fact(a.intranetIp) },
            { label: "Public IP", value: (a) => fact(a.publicIp) },
            { label: "Platform", value: (a) => fact(a.platform) },
            { label: "Arch", value: (a) => fact(a.arch) },
            { label: "OS", value: (a) => fact(a.os) },
            { label: "Version", value: (a) => fact(a.agentVersion) },
            { label: "Node", value: (a) => a.node },
            {
              label: "Connected since",
              value: (a) => a.state === "online" ? formatTime(a.connectedAt) : "–",
            },
          ],
          reply.data,
          {
            key: (a) => a.clientId,
            onRow: show,
            empty: "No agent matches.",
          },
        ),
        pager(reply.meta, (next) => {
          page = next;
          refresh.now();
        }),
      );
      // Open details follow the agent's state, unless it left this page of the list.
      const current = shown && reply.data.find((a) => a.clientId === shown.clientId);
      if (current && JSON.stringify(current) !== JSON.stringify(shown)) show(current);
    }

    function show(agent) {
      shown = agent;
      const actions = h("form", {
        class: "actions",
        on: { submit: (event) => event.preventDefault() },
      });
      if (canWrite && agent.state === "offline") {
        actions.append(
          h("button", {
            type: "button",
            class: "danger",
            data: { action: "forget-agent" },
            on: { click: () => forget(agent.clientId, actions) },
          }, "Forget"),
          h("small", {
            class: "muted",
            text: " Removes its record; it is listed again when it next comes online.",
          }),
        );
      }
      actions.append(formMessage());
      const state = agent.state === "online"
        ? `online since ${formatTime(agent.since)}`
        : `offline since ${formatTime(agent.since)}${agent.reason ? ` (${agent.reason})` : ""}`;
      details.replaceChildren(
        h(
          "article",
          { class: "card", data: { agent: agent.clientId } },
          h("h2", { text: agent.clientId }),
          facts([
            ["State", state],
            ["Node", agent.node],
            ...agentFacts(agent),
            ["User", agent.username ?? "–"],
            ["Address", agent.remoteAddress],
            ["Protocol", `MQTT ${protocolName(agent.protocolVersion)}`],
            ["Connected at", formatTime(agent.connectedAt)],
          ]),
          actions,
        ),
      );
    }

    async function forget(clientId, actions) {
      if (!confirm(`Forget the agent ${clientId}?`)) return;
      try {
        await api(`/agents/${segment(clientId)}`, { method: "DELETE" });
        shown = undefined;
        details.replaceChildren(
          h("p", { class: "notice good", text: `Forgot the agent ${clientId}.` }),
        );
        refresh.now();
      } catch (error) {
        say(actions, error.message, "bad");
      }
    }

    return refresh.stop;
  },
};
