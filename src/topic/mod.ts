/**
 * Topics: Topic Name and Topic Filter validation, the subscription index, the retained-message
 * index, shared subscription groups and MQTT 5 Topic Alias tables. Pure: no I/O, no timers.
 *
 * @module
 */

export {
  hasControlCharacter,
  isSysTopic,
  isWildcardFilter,
  MAX_TOPIC_BYTES,
  type TopicLimits,
  validateTopicFilter,
  validateTopicName,
} from "./validate.ts";
export { parseSharedFilter, QUEUE_GROUP, type SharedFilter, SharedGroup } from "./shared.ts";
export { SubscriptionTrie } from "./trie.ts";
export { RetainedIndex } from "./retained_index.ts";
export {
  InboundTopicAliases,
  OutboundTopicAliases,
  type TopicAliasAssignment,
} from "./topic_alias.ts";
export { topicMatchesFilter } from "./matches.ts";
