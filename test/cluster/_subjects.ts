/**
 * Test helpers for `cluster/subject.ts`: NATS's subject matching written from its documentation,
 * and random topic names and filters made of what needs care in a subject (`.`, `*`, `>`,
 * whitespace, control characters, `%`, empty levels, `$`, non-ASCII).
 *
 * @module
 */

/**
 * Whether a literal `subject` matches any of `patterns` the way nats-server matches: `*` is one
 * token, `>` (last) one or more tokens, anything else the same token.
 */
export function natsSubjectMatches(subject: string, patterns: readonly string[]): boolean {
  const tokens = subject.split(".");
  return patterns.some((pattern) => {
    const wanted = pattern.split(".");
    for (let i = 0; i < wanted.length; i++) {
      if (wanted[i] === ">") return tokens.length > i;
      if (i >= tokens.length) return false;
      if (wanted[i] !== "*" && wanted[i] !== tokens[i]) return false;
    }
    return tokens.length === wanted.length;
  });
}

/** Whole levels, so that random topics and filters share levels and match. */
const LEVELS = [
  "a",
  "b",
  "",
  "$",
  "$SYS",
  "a.b",
  "*",
  ">",
  " ",
  "\t",
  "%",
  "%2E",
  "ü",
  "😀",
  "\x7f",
  "a b",
];

/** Characters for random levels: ASCII but U+0000, `+` and `#`, and some beyond. */
const CHARS = [
  ...Array.from({ length: 127 }, (_, i) => String.fromCharCode(i + 1))
    .filter((c) => c !== "+" && c !== "#" && c !== "/"),
  "é",
  "日",
  "😀",
  "\u2028",
  "\ufeff",
  "/",
];

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)];
}

function randomLevel(random: () => number): string {
  if (random() < 0.7) return pick(random, LEVELS);
  let level = "";
  const n = Math.floor(random() * 5);
  for (let i = 0; i < n; i++) level += pick(random, CHARS);
  return level;
}

/** A random valid topic name of 1 to 5 levels (more when a random level brings a `/`). */
export function adversarialTopic(random: () => number): string {
  const levels: string[] = [];
  const n = 1 + Math.floor(random() * 5);
  for (let i = 0; i < n; i++) levels.push(randomLevel(random));
  const topic = levels.join("/");
  return topic === "" ? "/" : topic; // A topic name is never empty.
}

/**
 * A random valid topic filter: half the time made from `topic` (some levels replaced by `+`, the
 * tail perhaps replaced by `#`), so that it often matches; otherwise made the same way from
 * another random topic.
 */
export function adversarialFilter(random: () => number, topic: string): string {
  const base = random() < 0.5 ? topic : adversarialTopic(random);
  const levels = base.split("/").map((level) => random() < 0.3 ? "+" : level);
  if (random() < 0.3) {
    const keep = Math.floor(random() * (levels.length + 1));
    return [...levels.slice(0, keep), "#"].join("/");
  }
  return levels.join("/");
}
