/**
 * MQTT topic names and filters as NATS subjects, and back, such that NATS's own wildcard matching
 * is exactly MQTT's topic matching.
 *
 * ## Scheme
 *
 * A topic `l1/l2/…/ln` becomes `<prefix>.<root>.<e(l1)>.<e(l2)>.….<e(ln)>`: one token per level.
 *
 * - `<prefix>` is the mapping's own (e.g. `perch.m`), one or more literal tokens.
 * - `<root>` is `s` when the topic starts with `$` and `t` otherwise. A filter whose first level is
 *   a wildcard goes under `t`, so it can never match a `$` topic [MQTT-4.7.2-1]; a filter whose
 *   first level is a literal goes under the root that level implies, as the topics it matches do.
 * - `e(level)`: an empty level is the token `%`. Otherwise the level itself, with each `%`, `.`,
 *   `*`, `>`, space, DEL (U+007F) and control character U+0001 to U+001F written as `%` and two
 *   upper-case hex digits (`.` is `%2E`). Everything else, non-ASCII included, stays as it is.
 *
 * So a token is never empty and never holds `.`, whitespace, `*` or `>`, as NATS requires; a lone
 * `%` can only be an empty level, since a `%` within a level is always `%25`; and no token is ever
 * `*` or `>`, so a wildcard in a mapped subject is always a real wildcard.
 *
 * A filter maps its levels the same way, with `+` as `*` and a trailing `#` as `>`. In MQTT `a/#`
 * also matches `a` itself, so a filter ending in `/#` maps to two subjects, the parent level's and
 * the wildcard's (`….a` and `….a.>`); a filter of `#` alone is `<prefix>.t.>`, since every topic has
 * a first level. The filter's own image is always the last subject of the list, and
 * {@linkcode SubjectMapping.subjectToFilter} turns it back into the filter.
 *
 * Decoding accepts only what encoding produces (upper-case hex, escapes only where required), so a
 * subject decodes to one topic and that topic encodes back to the same subject.
 *
 * ## Length
 *
 * nats-server closes a client connection whose protocol line (`HPUB <subject> <reply> <header
 * size> <total size>`) is longer than its `max_control_line`, 4096 bytes by default; nats.js's
 * reply to a request such as a JetStream publish is a 38-byte inbox. So subjects are limited to
 * {@linkcode DEFAULT_MAX_SUBJECT_BYTES} (4000) bytes of UTF-8, leaving room for the reply, the sizes
 * and a margin, unless the mapping is given another limit for servers with a larger
 * `max_control_line`.
 * The file store records a subject's length in 16 bits, so no limit may exceed
 * {@linkcode MAX_SUBJECT_BYTES} (65535). A topic escapes to up to three times its length, so a long
 * MQTT topic (up to 65535 bytes) may not fit: the mapping then throws
 * {@linkcode SubjectTooLongError}.
 *
 * @module
 */

/** The longest subject under nats-server's default `max_control_line` of 4096 bytes. */
export const DEFAULT_MAX_SUBJECT_BYTES = 4000;
/** The longest subject a JetStream file store can record (its length is a 16-bit field). */
export const MAX_SUBJECT_BYTES = 65_535;

/** A topic or filter whose subject would be longer than the mapping's limit. */
export class SubjectTooLongError extends RangeError {
  /** The subject's length in UTF-8 bytes. */
  readonly bytes: number;
  /** The mapping's limit. */
  readonly maxBytes: number;

  constructor(what: string, bytes: number, maxBytes: number) {
    super(`${what} maps to a NATS subject of ${bytes} bytes, longer than ${maxBytes}`);
    this.name = "SubjectTooLongError";
    this.bytes = bytes;
    this.maxBytes = maxBytes;
  }
}

const ROOT_PLAIN = "t";
const ROOT_DOLLAR = "s";
const EMPTY_LEVEL = "%";

/** Whether the level character code must be escaped. */
function mustEscape(code: number): boolean {
  return code <= 0x20 || code === 0x7f || code === 0x25 /* % */ || code === 0x2e /* . */ ||
    code === 0x2a /* * */ || code === 0x3e /* > */;
}

const HEX = "0123456789ABCDEF";
/** How many topics' subjects a mapping remembers (cleared when full: a cheap bound). */
const RECENT_TOPICS = 1_024;

function encodeLevel(level: string): string {
  if (level.length === 0) return EMPTY_LEVEL;
  let out = "";
  let start = 0;
  for (let i = 0; i < level.length; i++) {
    const code = level.charCodeAt(i);
    if (!mustEscape(code)) continue;
    out += level.slice(start, i) + "%" + HEX[code >> 4] + HEX[code & 0xf];
    start = i + 1;
  }
  return start === 0 ? level : out + level.slice(start);
}

/** The level of a token `encodeLevel` wrote; undefined for any other token. */
function decodeToken(token: string): string | undefined {
  if (token === EMPTY_LEVEL) return "";
  if (token.length === 0) return undefined;
  let out = "";
  let start = 0;
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    if (c !== 0x25 /* % */) {
      // Raw, these would be unescaped specials, or wildcards in a level (never in a topic).
      if (mustEscape(c) || c === 0x2b /* + */ || c === 0x23 /* # */) return undefined;
      continue;
    }
    const hi = i + 2 < token.length ? HEX.indexOf(token[i + 1]) : -1;
    const lo = i + 2 < token.length ? HEX.indexOf(token[i + 2]) : -1;
    const code = (hi << 4) | lo;
    // Only the escapes encodeLevel writes; U+0000 is never in a topic.
    if (hi < 0 || lo < 0 || code === 0 || !mustEscape(code)) return undefined;
    out += token.slice(start, i) + String.fromCharCode(code);
    start = i + 3;
    i += 2;
  }
  return start === 0 ? token : out + token.slice(start);
}

/** Whether a token is fit for a literal NATS subject: not empty, no whitespace, no wildcard. */
function isLiteralToken(token: string): boolean {
  if (token.length === 0 || token === "*" || token === ">") return false;
  for (let i = 0; i < token.length; i++) if (token.charCodeAt(i) <= 0x20) return false;
  return true;
}

/** The UTF-8 length of `text` (a lone surrogate counts as the three bytes of U+FFFD). */
function utf8Bytes(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4; // A surrogate pair: one four-byte character.
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/** Maps MQTT topic names and filters to NATS subjects under one prefix, and back. */
export class SubjectMapping {
  /** The prefix, without a trailing dot. */
  readonly prefix: string;
  /** The longest subject allowed, in UTF-8 bytes. */
  readonly maxBytes: number;
  readonly #prefixTokens: number;
  /** Subjects of recent topics: a publisher usually repeats its topics. */
  readonly #recent = new Map<string, string>();

  /**
   * @param prefix Literal subject tokens to put the subjects under, e.g. `perch.m`.
   * @param maxBytes Longest subject allowed (default {@linkcode DEFAULT_MAX_SUBJECT_BYTES}); at most
   * {@linkcode MAX_SUBJECT_BYTES}.
   */
  constructor(prefix: string, maxBytes: number = DEFAULT_MAX_SUBJECT_BYTES) {
    const tokens = prefix.split(".");
    if (!tokens.every(isLiteralToken)) {
      throw new TypeError(`${JSON.stringify(prefix)} is not a literal NATS subject`);
    }
    if (!Number.isInteger(maxBytes) || maxBytes > MAX_SUBJECT_BYTES || maxBytes < 1) {
      throw new RangeError(`maxBytes must be an integer from 1 to ${MAX_SUBJECT_BYTES}`);
    }
    this.prefix = prefix;
    this.maxBytes = maxBytes;
    this.#prefixTokens = tokens.length;
  }

  /**
   * The subject of a topic name.
   *
   * @throws TypeError if `topic` is not a valid topic name (empty, or with `+`, `#` or U+0000).
   * @throws SubjectTooLongError if the subject would exceed {@linkcode SubjectMapping.maxBytes}.
   */
  topicToSubject(topic: string): string {
    const known = this.#recent.get(topic);
    if (known !== undefined) return known;
    if (topic.length === 0 || /[+#\0]/.test(topic)) {
      throw new TypeError(`${JSON.stringify(topic)} is not a topic name`);
    }
    const levels = topic.split("/");
    const root = topic.startsWith("$") ? ROOT_DOLLAR : ROOT_PLAIN;
    const subject = this.#checked(
      `${this.prefix}.${root}.${levels.map(encodeLevel).join(".")}`,
      `topic ${topic.slice(0, 64)}`,
    );
    if (this.#recent.size >= RECENT_TOPICS) this.#recent.clear();
    this.#recent.set(topic, subject);
    return subject;
  }

  /**
   * The subjects a NATS subscription needs to receive exactly the topics that `filter` matches:
   * one, or two for a filter ending in `/#` (the parent level, then the wildcard). The last one is
   * the filter's own image.
   *
   * @throws TypeError if `filter` is not a valid topic filter (a shared subscription's
   * `$share/{group}/` must be taken off first).
   * @throws SubjectTooLongError if a subject would exceed {@linkcode SubjectMapping.maxBytes}.
   */
  filterToSubjects(filter: string): string[] {
    const levels = filter.split("/");
    const invalid = filter.length === 0 || filter.includes("\0") ||
      levels.some((level, i) =>
        (level.length > 1 && /[+#]/.test(level)) || (level === "#" && i !== levels.length - 1)
      );
    if (invalid) throw new TypeError(`${JSON.stringify(filter)} is not a topic filter`);
    const root = filter.startsWith("$") ? ROOT_DOLLAR : ROOT_PLAIN;
    const tokens = levels.map((level) =>
      level === "+" ? "*" : level === "#" ? ">" : encodeLevel(level)
    );
    const what = `filter ${filter.slice(0, 64)}`;
    const subject = this.#checked(`${this.prefix}.${root}.${tokens.join(".")}`, what);
    if (tokens.length === 1 || tokens[tokens.length - 1] !== ">") return [subject];
    return [`${this.prefix}.${root}.${tokens.slice(0, -1).join(".")}`, subject];
  }

  /**
   * The topic name of a subject {@linkcode SubjectMapping.topicToSubject} made.
   *
   * @throws TypeError if `subject` is not one (another prefix, a wildcard, a bad escape).
   */
  subjectToTopic(subject: string): string {
    return this.#levels(subject, false).join("/");
  }

  /**
   * The topic filter of a subject {@linkcode SubjectMapping.filterToSubjects} made (either one:
   * the parent-level subject of `a/#` gives `a`).
   *
   * @throws TypeError if `subject` is not one.
   */
  subjectToFilter(subject: string): string {
    return this.#levels(subject, true).join("/");
  }

  #levels(subject: string, wildcards: boolean): string[] {
    const bad = (why: string) =>
      new TypeError(`${JSON.stringify(subject.slice(0, 200))} is not a mapped subject: ${why}`);
    const tokens = subject.split(".");
    const prefix = tokens.slice(0, this.#prefixTokens).join(".");
    if (prefix !== this.prefix) throw bad(`its prefix is not ${this.prefix}`);
    const root = tokens[this.#prefixTokens];
    if (root !== ROOT_PLAIN && root !== ROOT_DOLLAR) throw bad(`no root token t or s`);
    const body = tokens.slice(this.#prefixTokens + 1);
    if (body.length === 0) throw bad("it has no level");
    const levels = body.map((token, i) => {
      if (token === "*" || token === ">") {
        if (!wildcards) throw bad("a topic has no wildcards");
        if (token === ">" && i !== body.length - 1) throw bad("> is not last");
        return token === "*" ? "+" : "#";
      }
      const level = decodeToken(token);
      if (level === undefined) throw bad(`token ${JSON.stringify(token)} is not an encoded level`);
      return level;
    });
    // A wildcard first level reads as "+" or "#" here, so it too must be under the plain root.
    if ((root === ROOT_DOLLAR) !== levels[0].startsWith("$")) {
      throw bad(`root ${root} does not fit first level ${JSON.stringify(levels[0])}`);
    }
    return levels;
  }

  #checked(subject: string, what: string): string {
    const bytes = utf8Bytes(subject);
    if (bytes > this.maxBytes) throw new SubjectTooLongError(what, bytes, this.maxBytes);
    return subject;
  }
}
