/**
 * A small structured logger: levels, `text` (logfmt-like) and `json` lines, child loggers with bound
 * fields, and secret redaction by field name.
 *
 * @module
 */

import { writeSync } from "node:fs";
import { type Clock, systemClock } from "./clock.ts";
import { isSecretKey, REDACTED, redactText } from "./redact.ts";

/** Log levels from most to least verbose; `silent` disables logging. */
export const LOG_LEVELS = ["debug", "info", "warn", "error", "silent"] as const;
/** A log level, or `silent`. */
export type LogLevel = typeof LOG_LEVELS[number];
/** The level of one log entry. */
export type LogEntryLevel = Exclude<LogLevel, "silent">;

/** Output formats. */
export const LOG_FORMATS = ["text", "json"] as const;
/** An output format: `text` (`<time> <LEVEL> <msg> key=value ...`) or `json` (one object per line). */
export type LogFormat = typeof LOG_FORMATS[number];

/** Structured fields attached to a log entry. */
export type LogFields = Record<string, unknown>;

/** Receives one rendered entry, without a trailing newline. */
export type LogSink = (line: string, level: LogEntryLevel) => void;

/** A structured logger. Methods for levels below {@linkcode Logger.level} return at once. */
export interface Logger {
  /** The least severe level this logger writes. */
  readonly level: LogLevel;
  /** Logs diagnostic detail. */
  debug(msg: string, fields?: LogFields): void;
  /** Logs a normal event. */
  info(msg: string, fields?: LogFields): void;
  /** Logs something unexpected that the broker handled. */
  warn(msg: string, fields?: LogFields): void;
  /** Logs a failure. */
  error(msg: string, fields?: LogFields): void;
  /** Returns a logger that adds `fields` to every entry; fields given per call win over them. */
  child(fields: LogFields): Logger;
}

/** Options for {@linkcode createLogger}. */
export interface LoggerOptions {
  /** The least severe level written. Default `"info"`. */
  level?: LogLevel;
  /** Output format. Default `"text"`. */
  format?: LogFormat;
  /** Where lines go. Default: debug and info to stdout, warn and error to stderr (synchronous writes). */
  write?: LogSink;
  /** Time source for entry timestamps. Default {@linkcode systemClock}. */
  clock?: Pick<Clock, "now">;
}

const RANK: Readonly<Record<LogLevel, number>> = {
  debug: 0,
  info: 1,
  warn: 2,
  error: 3,
  silent: 4,
};
const RESERVED_JSON_KEYS = new Set(["time", "level", "msg"]);
/** Nested objects deeper than this render as "[object]"; error causes deeper as "...". */
const MAX_DEPTH = 5;

const encoder = new TextEncoder();
/**
 * One buffer every line is encoded into (the write is synchronous, so it is free again once it
 * returns): a line costs no buffer of its own, which on a broker logging every connect and
 * disconnect was an allocation per client left for the collector. Longer lines get their own.
 */
const lineBuffer = new Uint8Array(8192);

/** Writes the whole line to stdout (debug, info) or stderr (warn, error), looping over partial writes. */
function writeToStdio(line: string, level: LogEntryLevel): void {
  const fd = level === "warn" || level === "error" ? 2 : 1;
  // Each UTF-16 unit takes at most 3 bytes of UTF-8; a line that might not fit is encoded apart.
  let bytes: Uint8Array;
  if ((line.length + 1) * 3 <= lineBuffer.length) {
    const { written } = encoder.encodeInto(line, lineBuffer);
    lineBuffer[written] = 0x0a;
    bytes = lineBuffer.subarray(0, written + 1);
  } else bytes = encoder.encode(line + "\n");
  try {
    for (let offset = 0; offset < bytes.length;) {
      offset += writeSync(fd, bytes, offset);
    }
  } catch {
    // A closed or broken stdout/stderr (EPIPE) must not take the broker down with it: the entry
    // is lost, and there is nowhere left to report that.
  }
}

/**
 * Renders an error as its message, prefixed by its name unless that is plain `Error`, followed by
 * its cause chain: `Cannot connect: refused (cause: ECONNREFUSED)`.
 */
function errorText(error: Error, depth: number): string {
  const message = redactText(error.message);
  const head = error.name && error.name !== "Error" ? `${error.name}: ${message}` : message;
  if (error.cause === undefined) return head;
  if (depth >= MAX_DEPTH) return `${head} (cause: ...)`;
  const cause = error.cause instanceof Error
    ? errorText(error.cause, depth + 1)
    : plainText(toJsonValue(error.cause, depth + 1));
  return `${head} (cause: ${cause})`;
}

function plainText(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

function primitiveJsonValue(value: unknown): unknown {
  switch (typeof value) {
    case "number":
      return Number.isFinite(value) ? value : String(value);
    case "bigint":
    case "symbol":
      return value.toString();
    case "undefined":
      return null;
    case "string":
      return redactText(value);
    default:
      return value;
  }
}

/**
 * Converts a field value to a JSON-safe value: errors to their text, binary data to its size, nested
 * secrets redacted, cycles and excessive depth cut. `seen` (the objects on the current path) is made
 * at the first object: most fields are strings and numbers, and an entry is logged per connection.
 */
function toJsonValue(value: unknown, depth: number, seen?: WeakSet<object>): unknown {
  if (typeof value === "function") return `[function ${value.name || "anonymous"}]`;
  if (typeof value !== "object") return primitiveJsonValue(value);
  if (value === null) return null;
  if (value instanceof Error) return errorText(value, depth);
  if (value instanceof Date) {
    return Number.isNaN(value.getTime()) ? "Invalid Date" : value.toISOString();
  }
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
    return `[${value.byteLength} bytes]`;
  }
  seen ??= new WeakSet();
  if (seen.has(value)) return "[circular]";
  if (depth >= MAX_DEPTH) return "[object]";
  seen.add(value);
  try {
    if (Array.isArray(value)) return value.map((item) => toJsonValue(item, depth + 1, seen));
    const entries = value instanceof Map ? [...value] : Object.entries(value);
    const out: Record<string, unknown> = {};
    for (const [key, item] of entries) {
      out[String(key)] = isSecretKey(String(key)) ? REDACTED : toJsonValue(item, depth + 1, seen);
    }
    return out;
  } finally {
    seen.delete(value);
  }
}

// deno-lint-ignore no-control-regex -- control characters are exactly what must be escaped
const CONTROL = /[\u0000-\u001f\u007f]/g;
// deno-lint-ignore no-control-regex -- see above
const NEEDS_QUOTES = /[\s"=\\\u0000-\u001f\u007f]/;

/** Quotes a text-format token when it is empty or holds spaces, quotes, `=`, `\` or control characters. */
function token(text: string): string {
  return text === "" || NEEDS_QUOTES.test(text) ? JSON.stringify(text) : text;
}

/**
 * The text-format rendering of one field value: strings as tokens, objects and arrays as JSON
 * (quoted as a whole only when they hold whitespace).
 */
function textValue(key: string, value: unknown): string {
  if (isSecretKey(key)) return REDACTED;
  if (value === undefined) return "undefined";
  const normalized = toJsonValue(value, 0);
  if (typeof normalized === "string") return token(normalized);
  const json = JSON.stringify(normalized);
  return /\s/.test(json) ? JSON.stringify(json) : json;
}

/** Renders fields as the fragment appended to an entry: ` k=v ...` (text) or `,"k":v,...` (json). */
type FieldsRenderer = (fields: LogFields) => string;

const renderTextFields: FieldsRenderer = (fields) => {
  let out = "";
  for (const key in fields) out += ` ${token(key)}=${textValue(key, fields[key])}`;
  return out;
};

const renderJsonFields: FieldsRenderer = (fields) => {
  let out = "";
  for (const key in fields) {
    const value = isSecretKey(key) ? REDACTED : toJsonValue(fields[key], 0);
    out += `,${JSON.stringify(RESERVED_JSON_KEYS.has(key) ? `fields.${key}` : key)}:${
      JSON.stringify(value)
    }`;
  }
  return out;
};

interface LoggerCore {
  readonly level: LogLevel;
  readonly rank: number;
  readonly json: boolean;
  readonly write: LogSink;
  readonly clock: Pick<Clock, "now">;
}

class StructuredLogger implements Logger {
  readonly #core: LoggerCore;
  readonly #bound: LogFields;
  /** `#bound`, rendered once for all entries. */
  readonly #boundText: string;

  constructor(core: LoggerCore, bound: LogFields) {
    this.#core = core;
    this.#bound = bound;
    this.#boundText = this.#render(bound);
  }

  get level(): LogLevel {
    return this.#core.level;
  }

  debug(msg: string, fields?: LogFields): void {
    if (this.#core.rank <= RANK.debug) this.#emit("debug", msg, fields);
  }

  info(msg: string, fields?: LogFields): void {
    if (this.#core.rank <= RANK.info) this.#emit("info", msg, fields);
  }

  warn(msg: string, fields?: LogFields): void {
    if (this.#core.rank <= RANK.warn) this.#emit("warn", msg, fields);
  }

  error(msg: string, fields?: LogFields): void {
    if (this.#core.rank <= RANK.error) this.#emit("error", msg, fields);
  }

  child(fields: LogFields): Logger {
    return new StructuredLogger(this.#core, { ...this.#bound, ...fields });
  }

  #render(fields: LogFields): string {
    return this.#core.json ? renderJsonFields(fields) : renderTextFields(fields);
  }

  #fieldsText(fields: LogFields | undefined): string {
    if (fields === undefined) return this.#boundText;
    for (const key in fields) {
      if (Object.hasOwn(this.#bound, key)) return this.#render({ ...this.#bound, ...fields });
    }
    return this.#boundText + this.#render(fields);
  }

  #emit(level: LogEntryLevel, msg: string, fields: LogFields | undefined): void {
    const core = this.#core;
    const time = new Date(core.clock.now()).toISOString();
    const rest = this.#fieldsText(fields);
    msg = redactText(msg);
    const line = core.json
      ? `{"time":"${time}","level":"${level}","msg":${JSON.stringify(msg)}${rest}}`
      : `${time} ${level.toUpperCase()} ${
        msg.replace(CONTROL, (c) => JSON.stringify(c).slice(1, -1))
      }${rest}`;
    core.write(line, level);
  }
}

/**
 * Creates a structured logger.
 *
 * Text lines look like `2026-11-22T10:00:00.000Z INFO listener started transport=tcp address=0.0.0.0:1883`
 * (values with spaces, quotes, `=` or control characters JSON-quoted; control characters in the
 * message escaped, so one entry is always one line). JSON lines hold `time`, `level`, `msg` and the
 * fields (a field named like one of those three is written as `fields.<name>`).
 *
 * Field values: errors render as their message and cause chain, binary data as its size, and any
 * field whose name marks a secret (see {@linkcode isSecretKey}), at any depth, as `[redacted]`.
 *
 * @example Logging to a test sink
 * ```ts
 * import { createLogger } from "./logger.ts";
 *
 * const lines: string[] = [];
 * const log = createLogger({ format: "json", write: (line) => lines.push(line) });
 * log.child({ clientId: "c1" }).warn("keepalive expired", { password: "hunter2" });
 * // lines[0] holds "clientId":"c1" and "password":"[redacted]"
 * ```
 *
 * @param options Level, format, sink and clock
 * @returns A logger
 * @throws {RangeError} when the level or format is not one of {@linkcode LOG_LEVELS} or {@linkcode LOG_FORMATS}
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? "info";
  const format = options.format ?? "text";
  if (!LOG_LEVELS.includes(level)) {
    throw new RangeError(
      `Invalid log level: expected one of ${LOG_LEVELS.join(", ")}, got "${level}"`,
    );
  }
  if (!LOG_FORMATS.includes(format)) {
    throw new RangeError(`Invalid log format: expected text or json, got "${format}"`);
  }
  return new StructuredLogger({
    level,
    rank: RANK[level],
    json: format === "json",
    write: options.write ?? writeToStdio,
    clock: options.clock ?? systemClock,
  }, {});
}

const noop = (): void => {};

/** A logger that discards everything (level `silent`). */
export const nullLogger: Logger = {
  level: "silent",
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  child: () => nullLogger,
};
