/** Scenario names as given to `--scenarios`. */
export const SCENARIO_NAMES = [
  "fan-in",
  "fan-out",
  "shared",
  "latency",
  "connections",
  "isolation",
] as const;

/** One scenario name. */
export type ScenarioName = typeof SCENARIO_NAMES[number];
