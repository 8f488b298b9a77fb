import assert from "node:assert/strict";
import { topicMatchesFilter } from "../../src/topic/matches.ts";
import { MATCH_CASES, naiveMatches, prng, randomFilter, randomTopic } from "./_reference.ts";

Deno.test("topicMatchesFilter() follows the spec's matching examples [MQTT-4.7.1-1] [MQTT-4.7.1-2] [MQTT-4.7.2-1] [MQTT-4.7.3-4]", () => {
  for (const cases of Object.values(MATCH_CASES)) {
    for (const [filter, matches, misses] of cases) {
      for (const topic of matches) {
        assert.equal(topicMatchesFilter(topic, filter), true, `${filter} ${topic}`);
      }
      for (const topic of misses) {
        assert.equal(topicMatchesFilter(topic, filter), false, `${filter} ${topic}`);
      }
    }
  }
});

Deno.test("topicMatchesFilter() agrees with a naive matcher on random pairs", () => {
  const random = prng(0xc0ffee);
  for (let i = 0; i < 100_000; i++) {
    const filter = randomFilter(random);
    const topic = randomTopic(random);
    assert.equal(
      topicMatchesFilter(topic, filter),
      naiveMatches(filter, topic),
      `${filter} ${topic}`,
    );
  }
});
