/**
 * Expands the selected scenarios into cases.
 *
 * @module
 */

import type { BenchOptions } from "../cli.ts";
import type { BenchCase } from "./bench_case.ts";
import { connectionCases, planConnectionCounts } from "./connection_cases.ts";
import { latencyCases } from "./latency_cases.ts";
import { isolationCases } from "./isolation_cases.ts";
import { fanInCases, fanOutCases, sharedCases } from "./message_cases.ts";

/**
 * Builds the cases of the selected scenarios, in scenario order.
 *
 * @param options The options.
 * @returns The cases and notes on how they were chosen.
 */
export function buildCases(options: BenchOptions): { cases: BenchCase[]; notes: string[] } {
  const notes: string[] = [];
  const cases = options.scenarios.flatMap((scenario) => {
    switch (scenario) {
      case "fan-in":
        return fanInCases(options);
      case "fan-out":
        return fanOutCases(options);
      case "shared":
        return sharedCases(options);
      case "latency":
        return latencyCases(options.latencyRate);
      case "connections": {
        const plan = planConnectionCounts(options.connections);
        notes.push(...plan.notes);
        return connectionCases(plan.counts);
      }
      case "isolation":
        return isolationCases(options.publishers);
    }
  });
  const prefixes = options.cases;
  if (prefixes === undefined) return { cases, notes };
  const kept = cases.filter((benchCase) =>
    prefixes.some((prefix) => benchCase.id.startsWith(prefix))
  );
  if (kept.length === 0) {
    throw new RangeError(
      `Cannot select cases: none of ${cases.map((c) => c.id).join(", ")} starts with ` +
        `${prefixes.map((prefix) => `"${prefix}"`).join(" or ")}`,
    );
  }
  return { cases: kept, notes };
}
