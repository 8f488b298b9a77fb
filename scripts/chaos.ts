/**
 * `deno task chaos`: fault scenarios against local clusters of real processes (nats-server,
 * broker front-ends, haproxy), each printing one line: acknowledged, received, lost, duplicated,
 * refused, and its checks. Exits 1 when a scenario lost an acknowledged message, delivered a QoS 2
 * message twice or failed a check.
 *
 * Usage: `deno task chaos [--only NAME[,NAME]] [--messages N] [--quiet]`; scenario names:
 * see {@linkcode SCENARIOS}.
 *
 * @module
 */

import type { Log, ScenarioResult } from "./chaos/harness.ts";
import { describeRefusals } from "./chaos/harness.ts";
import { frontEndKill } from "./chaos/front_end_kill.ts";
import { natsRestart } from "./chaos/nats_restart.ts";
import { natsNodeKill } from "./chaos/nats_node_kill.ts";
import { natsCut } from "./chaos/nats_cut.ts";
import { slowConsumers } from "./chaos/slow_consumers.ts";

/** A scenario by name, run with a message count per stream. */
export const SCENARIOS: Record<
  string,
  (options: { messages: number; log?: Log }) => Promise<ScenarioResult>
> = {
  "front-end-kill": frontEndKill,
  "nats-restart": natsRestart,
  "nats-node-kill": natsNodeKill,
  "nats-cut": natsCut,
  "slow-consumers": slowConsumers,
};

/** Whether a scenario's result holds: nothing acknowledged lost, no QoS 2 twice, checks ok. */
export function passed(result: ScenarioResult): boolean {
  return result.totals.lost === 0 && result.totals.duplicatedQos2 === 0 &&
    result.checks.every((check) => check.ok);
}

/** The one line of a scenario, then its failed checks and streams that lost something. */
export function summary(result: ScenarioResult): string {
  const t = result.totals;
  const refused: Record<string, number> = {};
  for (const stream of result.streams) {
    for (const [code, n] of Object.entries(stream.refused)) {
      refused[code] = (refused[code] ?? 0) + n;
    }
  }
  const checks = result.checks.filter((check) => check.ok).length;
  const figures = Object.entries(result.figures ?? {}).map(([k, v]) => ` ${k}=${v}`).join("");
  const lines = [
    `${passed(result) ? "PASS" : "FAIL"} ${result.scenario}: acknowledged ${t.acknowledged}, ` +
    `received ${t.received}, lost ${t.lost}, duplicated ${t.duplicated} ` +
    `(QoS 2: ${t.duplicatedQos2}), refused ${describeRefusals(refused)}, ` +
    `checks ${checks}/${result.checks.length}${figures}`,
  ];
  for (const check of result.checks) {
    lines.push(`    ${check.ok ? "ok  " : "FAIL"} ${check.name}: ${check.detail}`);
  }
  for (const stream of result.streams) {
    if (stream.lost > 0 || (stream.qos === 2 && stream.duplicated > 0)) {
      lines.push(
        `    FAIL stream ${stream.name}: acknowledged ${stream.acknowledged}, ` +
          `lost ${stream.lost} (${stream.missing.join(" ")}), duplicated ${stream.duplicated} (${
            stream.duplicates.join(" ")
          }), connects ${JSON.stringify(stream.connects)}, ` +
          `session not present ${stream.sessionsNotPresent}`,
      );
    }
  }
  return lines.join("\n");
}

async function main(args: string[]): Promise<number> {
  const value = (name: string) => {
    const i = args.indexOf(name);
    return i === -1 ? undefined : args[i + 1];
  };
  const only = value("--only")?.split(",") ?? Object.keys(SCENARIOS);
  const messages = Number(value("--messages") ?? 1000);
  const quiet = args.includes("--quiet");
  const unknown = only.filter((name) => !(name in SCENARIOS));
  if (unknown.length > 0 || !Number.isInteger(messages) || messages < 10) {
    console.error(
      `usage: deno task chaos [--only ${Object.keys(SCENARIOS).join(",")}] [--messages N>=10]`,
    );
    return 2;
  }
  let failed = 0;
  for (const name of only) {
    const started = Date.now();
    const log: Log = quiet ? () => {} : (line) => console.log(`  [${name}] ${line}`);
    try {
      const result = await SCENARIOS[name]({ messages, log });
      console.log(`${summary(result)}\n    (${((Date.now() - started) / 1000).toFixed(1)} s)`);
      if (!passed(result)) failed++;
    } catch (error) {
      failed++;
      console.log(`FAIL ${name}: ${error instanceof Error ? error.stack : error}`);
    }
  }
  return failed === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
