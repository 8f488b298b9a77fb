/**
 * Command-line flags of the `perch` broker.
 *
 * @module
 */

import { ENV_PREFIX, ENV_SEPARATOR } from "./env.ts";

/** Parsed command-line flags. */
export interface CliArgs {
  /** `-c/--config <file>`: the YAML config file. */
  config?: string;
  /** `-h/--help`: print {@linkcode helpText} and exit. */
  help: boolean;
  /** `-v/--version`: print the version and exit. */
  version: boolean;
  /** `--check-config`: load and validate the configuration, then exit. */
  checkConfig: boolean;
}

/** A command line that could not be parsed. */
export interface CliError {
  /** What is wrong, e.g. `Unknown flag: --port`. */
  error: string;
}

const BOOLEAN_FLAGS: Readonly<Record<string, "help" | "version" | "checkConfig">> = {
  "-h": "help",
  "--help": "help",
  "-v": "version",
  "--version": "version",
  "--check-config": "checkConfig",
};

const CONFIG_FLAGS = ["-c", "--config"];

/**
 * Parses the broker's command line: `-c/--config <file>` (also `--config=<file>`), `-v/--version`,
 * `-h/--help` and `--check-config`.
 *
 * @example Parsing `process.argv.slice(2)`
 * ```ts
 * import { parseArgs } from "./cli.ts";
 *
 * const args = parseArgs(["-c", "perch.yaml", "--check-config"]);
 * // { config: "perch.yaml", help: false, version: false, checkConfig: true }
 * ```
 *
 * @param args The arguments after the program name
 * @returns The flags, or an error naming the unknown flag, stray argument, missing or repeated value
 */
export function parseArgs(args: readonly string[]): CliArgs | CliError {
  const parsed: CliArgs = { help: false, version: false, checkConfig: false };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const flag = BOOLEAN_FLAGS[arg];
    if (flag !== undefined) {
      parsed[flag] = true;
      continue;
    }
    let file: string | undefined;
    let name = arg;
    if (CONFIG_FLAGS.includes(arg)) {
      file = args[++i];
      if (file === undefined || file.startsWith("-")) {
        return { error: `Missing value for flag: ${arg} needs a file path` };
      }
    } else if (arg.startsWith("--config=")) {
      name = "--config";
      file = arg.slice("--config=".length);
      if (file === "") return { error: "Missing value for flag: --config needs a file path" };
    } else if (arg.startsWith("-")) {
      return { error: `Unknown flag: ${arg}` };
    } else {
      return { error: `Unexpected argument: ${arg} (give the config file with -c <file>)` };
    }
    if (parsed.config !== undefined) return { error: `Flag given more than once: ${name}` };
    parsed.config = file;
  }
  return parsed;
}

/**
 * The `--help` text: usage, flags, the environment variable scheme, and where the config reference is.
 *
 * @returns Multi-line text ending with a newline
 */
export function helpText(): string {
  return `Perch: an MQTT 3.1.1 and 5.0 broker

Usage:
  perch [-c <file>] [--check-config]
  perch --help | --version

Flags:
  -c, --config <file>  Read the configuration from a YAML file (default: built-in defaults)
      --check-config   Validate the configuration (file and environment), report problems, and exit
  -v, --version        Print the version and exit
  -h, --help           Print this help and exit

Environment:
  Variables starting with ${ENV_PREFIX} override the config file. "${ENV_SEPARATOR}" separates key path segments,
  which match the camelCase keys ignoring case and single underscores; values are read as YAML
  scalars. A variable that names no key is an error.
    ${ENV_PREFIX}LISTENERS${ENV_SEPARATOR}TCP${ENV_SEPARATOR}PORT=1884     sets listeners.tcp.port
    ${ENV_PREFIX}MQTT${ENV_SEPARATOR}MAXPACKETSIZE=2MiB    sets mqtt.maxPacketSize
    ${ENV_PREFIX}LOG${ENV_SEPARATOR}LEVEL=debug            sets log.level

Durations are seconds or strings with a unit (500ms, 10s, 5m, 2h, 1d); sizes are bytes or strings
with a unit (64KiB, 1MiB, 1GiB, 16kb). Every key and its default is listed in
docs/configuration.md.
`;
}
