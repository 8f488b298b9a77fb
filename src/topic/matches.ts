/**
 * Whether one topic name matches one topic filter, for checks outside the trie (e.g. a queued
 * message against a session's current subscriptions). Same rules as the trie: `+` is one level,
 * `#` the parent and everything below, and `$` topics are not matched by a leading wildcard
 * [MQTT-4.7.2-1].
 */
export function topicMatchesFilter(topic: string, filter: string): boolean {
  if (topic.charCodeAt(0) === 0x24 /* $ */) {
    const first = filter.charCodeAt(0);
    if (first === 0x2b /* + */ || first === 0x23 /* # */) return false;
  }
  let t = 0;
  let f = 0;
  const topicLength = topic.length;
  const filterLength = filter.length;
  while (f < filterLength) {
    const c = filter.charCodeAt(f);
    if (c === 0x23 /* # */) return true; // Matches the parent level and all below [MQTT-4.7.1-2].
    if (c === 0x2b /* + */) {
      while (t < topicLength && topic.charCodeAt(t) !== 0x2f) t++;
      f++;
    } else {
      // Compare one literal level.
      while (f < filterLength && filter.charCodeAt(f) !== 0x2f) {
        if (t >= topicLength || topic.charCodeAt(t) !== filter.charCodeAt(f)) return false;
        t++;
        f++;
      }
      if (t < topicLength && topic.charCodeAt(t) !== 0x2f) return false;
    }
    // Both at a level end: step over the separators together.
    if (f < filterLength) {
      if (t >= topicLength) {
        // The topic ended; only "/#" may remain in the filter (`a/#` matches `a`).
        return filter.length - f === 2 && filter.charCodeAt(f + 1) === 0x23;
      }
      f++;
      t++;
    } else return t >= topicLength;
  }
  return t >= topicLength;
}
