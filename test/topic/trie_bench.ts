/**
 * Benchmarks of the subscription trie, the routing hot path: `deno bench test/topic/trie_bench.ts`.
 *
 * @module
 */

import { SubscriptionTrie } from "../../src/topic/trie.ts";

const SITES = 1_000;
const DEVICES = 100;

/** 100k subscriptions: 60k exact, 30k `site/{n}/device/{m}/+`, 10k `site/{n}/#`. */
function mixedTrie(): SubscriptionTrie<number, number> {
  const trie = new SubscriptionTrie<number, number>();
  let id = 0;
  for (let n = 0; n < 600; n++) {
    for (let m = 0; m < DEVICES; m++) trie.add(`site/${n}/device/${m}/temp`, id, id++);
  }
  for (let n = 0; n < 300; n++) {
    for (let m = 0; m < DEVICES; m++) trie.add(`site/${n}/device/${m}/+`, id, id++);
  }
  for (let n = 0; n < SITES; n++) {
    for (let k = 0; k < 10; k++) trie.add(`site/${n}/#`, id, id++);
  }
  return trie;
}

/** 100k exact subscriptions `site/{n}/device/{m}/temp`. */
function exactTrie(): SubscriptionTrie<number, number> {
  const trie = new SubscriptionTrie<number, number>();
  let id = 0;
  for (let n = 0; n < SITES; n++) {
    for (let m = 0; m < DEVICES; m++) trie.add(`site/${n}/device/${m}/temp`, id, id++);
  }
  return trie;
}

/** Topics spread over the whole space, built fresh (as the decoder does) and cycled through. */
function topics(count: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    out.push(`site/${(i * 7919) % SITES}/device/${(i * 104729) % DEVICES}/temp`);
  }
  return out;
}

const mixed = mixedTrie();
const exact = exactTrie();
const hits = topics(4_096);
const misses = hits.map((topic) => `x${topic}`);
const out: number[] = [];
let next = 0;

Deno.bench("match, 100k mixed subscriptions (10-12 matches each)", {
  group: "match",
  baseline: true,
}, () => {
  out.length = 0;
  mixed.match(hits[next++ & 4095], out);
});

Deno.bench("match, 100k exact subscriptions (fast path, 1 match)", { group: "match" }, () => {
  out.length = 0;
  exact.match(hits[next++ & 4095], out);
});

Deno.bench("match, 100k mixed subscriptions, no match", { group: "match" }, () => {
  out.length = 0;
  mixed.match(misses[next++ & 4095], out);
});

Deno.bench("add + remove an exact filter, 100k mixed subscriptions", { group: "churn" }, () => {
  const topic = hits[next++ & 4095];
  mixed.add(topic, -1, -1);
  mixed.remove(topic, -1);
});

Deno.bench("add + remove a new '+' filter, 100k mixed subscriptions", { group: "churn" }, () => {
  const filter = `site/${next++ & 4095}/+/new/+`;
  mixed.add(filter, -1, -1);
  mixed.remove(filter, -1);
});

Deno.bench("add + remove a key on an existing '#' filter", { group: "churn" }, () => {
  const filter = `site/${next++ % SITES}/#`;
  mixed.add(filter, -1, -1);
  mixed.remove(filter, -1);
});
