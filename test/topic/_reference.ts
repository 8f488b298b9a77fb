/**
 * Test helpers for the topic indexes: a naive reference matcher written straight from MQTT 5.0
 * section 4.7, a seeded PRNG, and random topic and filter generators.
 *
 * @module
 */

/** Whether `filter` matches `topic`, by splitting both into levels. */
export function naiveMatches(filter: string, topic: string): boolean {
  return naiveMatchesLevels(filter.split("/"), topic.split("/"));
}

/** Whether the filter levels `f` match the topic levels `t`. */
export function naiveMatchesLevels(f: string[], t: string[]): boolean {
  // [MQTT-4.7.2-1]
  if (t[0].startsWith("$") && (f[0] === "+" || f[0] === "#")) return false;
  for (let i = 0; i < f.length; i++) {
    if (f[i] === "#") return true; // the parent level and any number of child levels
    if (i >= t.length) return false;
    if (f[i] !== "+" && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

/** A filter, topics it matches, and topics it does not match. */
export type MatchCase = [filter: string, matches: string[], misses: string[]];

/** The spec's matching examples (MQTT 5.0 sections 4.7.1 to 4.7.3) and edge cases, by rule. */
export const MATCH_CASES: Record<
  "hash" | "plus" | "dollar" | "emptyLevels" | "exact",
  MatchCase[]
> = {
  /** `#` matches the parent and any child levels [MQTT-4.7.1-1] (3.1.1: MQTT-4.7.1-2). */
  hash: [
    [
      "sport/tennis/player1/#",
      [
        "sport/tennis/player1",
        "sport/tennis/player1/ranking",
        "sport/tennis/player1/score/wimbledon",
        "sport/tennis/player1/",
      ],
      ["sport/tennis/player2", "sport/tennis", "sport/tennis/player10"],
    ],
    ["sport/#", ["sport", "sport/", "sport/tennis", "sport/tennis/player1"], ["sports", "/sport"]],
    ["#", ["sport", "/", "a/b/c", "/finance"], ["$SYS/x"]],
    ["/#", ["/", "/finance", "/a/b"], ["finance", "a/b"]],
  ],
  /** `+` matches exactly one level [MQTT-4.7.1-2] (3.1.1: MQTT-4.7.1-3). */
  plus: [
    [
      "sport/tennis/+",
      ["sport/tennis/player1", "sport/tennis/player2", "sport/tennis/"],
      ["sport/tennis/player1/ranking", "sport/tennis"],
    ],
    ["sport/+", ["sport/", "sport/x"], ["sport", "sport/x/y"]],
    ["+/+", ["/finance", "a/b", "/"], ["a", "a/b/c"]],
    ["/+", ["/finance", "/"], ["finance", "a/b"]],
    ["+", ["finance", "a"], ["/finance", "a/b", "/"]],
    ["+/tennis/#", ["sport/tennis", "sport/tennis/player1/ranking", "/tennis"], ["sport/golf"]],
    ["sport/+/player1", ["sport/tennis/player1", "sport//player1"], ["sport/player1"]],
    ["+/+/+", ["a/b/c", "//"], ["a/b", "a/b/c/d"]],
  ],
  /** Leading wildcards do not match `$` topics [MQTT-4.7.2-1]. */
  dollar: [
    ["#", ["SYS/x"], ["$SYS/monitor/Clients", "$SYS", "$"]],
    ["+/monitor/Clients", ["SYS/monitor/Clients"], ["$SYS/monitor/Clients"]],
    ["+", ["a"], ["$SYS", "$"]],
    ["+/#", ["a/b"], ["$SYS/a"]],
    ["$SYS/#", ["$SYS/monitor/Clients", "$SYS"], ["SYS/x", "$SYS2/x"]],
    ["$SYS/monitor/+", ["$SYS/monitor/Clients"], ["$SYS/monitor"]],
    ["$SYS/monitor/Clients", ["$SYS/monitor/Clients"], ["$SYS/monitor/clients"]],
    ["a/+", ["a/$x"], []],
    ["a/#", ["a/$x/y"], []],
  ],
  /** Empty levels are levels [MQTT-4.7.3-4]. */
  emptyLevels: [
    ["a//b", ["a//b"], ["a/b", "a///b"]],
    ["a/b", ["a/b"], ["a//b", "a/b/", "/a/b"]],
    ["a/+/b", ["a//b", "a/x/b"], ["a/b"]],
    ["/finance", ["/finance"], ["finance"]],
    ["+/a", ["/a", "x/a"], ["a"]],
    ["a/", ["a/"], ["a"]],
    ["//", ["//"], ["/", "///"]],
  ],
  /** Levels compare exactly, without normalization [MQTT-4.7.3-4]. */
  exact: [
    ["ACCOUNTS", ["ACCOUNTS"], ["Accounts", "accounts"]],
    ["Accounts payable", ["Accounts payable"], ["Accounts  payable", "Accountspayable"]],
    ["caf\u00e9/+", ["caf\u00e9/x"], ["cafe\u0301/x"]],
  ],
};

/** A small seeded PRNG (mulberry32): the same seed gives the same sequence. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Few level names, empty and `$` ones included, so that random topics and filters overlap. */
const LEVELS = ["a", "b", "c", "", "$SYS", "dd"];

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)];
}

/** A random valid Topic Name of 1 to 5 levels. */
export function randomTopic(random: () => number): string {
  const levels: string[] = [];
  const n = 1 + Math.floor(random() * 5);
  for (let i = 0; i < n; i++) levels.push(pick(random, LEVELS));
  return levels.join("/");
}

/** A random valid Topic Filter of 1 to 5 levels, with `+` and a trailing `#` now and then. */
export function randomFilter(random: () => number): string {
  const levels: string[] = [];
  const n = 1 + Math.floor(random() * 5);
  for (let i = 0; i < n; i++) {
    if (i === n - 1 && random() < 0.2) levels.push("#");
    else levels.push(random() < 0.3 ? "+" : pick(random, LEVELS));
  }
  return levels.join("/");
}
