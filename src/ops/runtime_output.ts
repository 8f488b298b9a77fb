/**
 * Keeps the log one format: what the runtime and npm modules would print to stdout or stderr on
 * their own (Node-style process warnings such as deprecations, `console.*` calls, an uncaught
 * error's report) goes through the broker's logger instead, as `json` or `text` lines like any
 * other. `main.ts` installs it as soon as the logger exists.
 *
 * @module
 */

import process from "node:process";
import { format } from "node:util";
import type { Logger } from "../util/logger.ts";

type ConsoleMethod = "log" | "info" | "debug" | "warn" | "error";
const LEVELS: Readonly<Record<ConsoleMethod, "debug" | "info" | "warn" | "error">> = {
  log: "info",
  info: "info",
  debug: "debug",
  warn: "warn",
  error: "error",
};

/**
 * Routes process warnings and console output to `logger`, and reports an uncaught error or
 * unhandled rejection as an `error` line before exiting with status 1 (as the runtime would, but
 * without its plain-text report).
 *
 * @returns A function that puts everything back (for tests)
 */
export function routeRuntimeOutput(logger: Logger): () => void {
  const emitWarning = process.emitWarning;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const options = rest[0];
    const type = typeof options === "string"
      ? options
      : (options as { type?: string } | undefined)?.type;
    const code = typeof rest[1] === "string"
      ? rest[1]
      : (options as { code?: string } | undefined)?.code;
    logger.warn("runtime warning", {
      type: warning instanceof Error ? warning.name : type ?? "Warning",
      code,
      warning: warning instanceof Error ? warning.message : String(warning),
    });
  }) as typeof process.emitWarning;

  const saved = new Map<ConsoleMethod, (...args: unknown[]) => void>();
  for (const method of Object.keys(LEVELS) as ConsoleMethod[]) {
    saved.set(method, console[method]);
    console[method] = (...args: unknown[]) => {
      logger[LEVELS[method]]("console output", { text: format(...args) });
    };
  }

  // Node's process events: Deno and Bun both emit them (Bun has no global error events).
  const uncaught = (error: unknown) => {
    logger.error("uncaught error", { error });
    process.exit(1);
  };
  const unhandled = (error: unknown) => {
    logger.error("unhandled rejection", { error });
    process.exit(1);
  };
  process.on("uncaughtException", uncaught);
  process.on("unhandledRejection", unhandled);

  return () => {
    process.emitWarning = emitWarning;
    for (const [method, original] of saved) console[method] = original;
    process.off("uncaughtException", uncaught);
    process.off("unhandledRejection", unhandled);
  };
}
