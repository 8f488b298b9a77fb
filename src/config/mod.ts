/**
 * Configuration: the schema and its defaults, loading YAML with environment overrides, readable
 * errors, the generated reference, and the command line.
 *
 * @module
 */

export { type CliArgs, type CliError, helpText, parseArgs } from "./cli.ts";
export {
  ENV_PREFIX,
  ENV_SEPARATOR,
  type EnvOverride,
  type EnvOverrides,
  readEnvOverrides,
} from "./env.ts";
export { ConfigError, type ConfigIssue, formatIssue } from "./errors.ts";
export { loadConfig, type LoadConfigOptions } from "./load.ts";
export { type ConfigReferenceEntry, describeConfig } from "./reference.ts";
export { type Config, type ConfigInput, configSchema } from "./schema.ts";
export { formatDuration, formatSize, parseDuration, parseSize } from "./units.ts";
