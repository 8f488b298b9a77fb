/**
 * Authorization: ordered allow/deny rules on topic filters, first match wins, with a configurable
 * default. Rules may name `%u` (user name) and `%c` (client id); a rule whose placeholder has no
 * value, or whose value holds `/`, `+` or `#`, does not match (a user called `+` must not widen a
 * rule to everyone's topics).
 *
 * Checks:
 * - publish: the topic name against `publish` and `both` rules;
 * - subscribe: a rule matches when its filter *covers* the requested filter (every topic the
 *   requested filter can match, the rule's filter matches too);
 * - read (every delivery): the topic name against `subscribe` and `both` rules.
 *
 * Topics starting with `$` (such as `$SYS/...`) never fall to the default: they are readable and
 * subscribable only where a rule matches them, and a rule starting with a wildcard never matches
 * them [MQTT-4.7.2-1].
 *
 * The per-delivery check is cheap: each client gets its rules compiled once (placeholders filled,
 * non-matching rules dropped) and a bounded cache of topic -> decision, both thrown away when the
 * rules change.
 *
 * @module
 */

import type { ClientInfo } from "../hooks/hooks.ts";
import { topicMatchesFilter, validateTopicFilter } from "../topic/mod.ts";

/** What a rule applies to. */
export type AclAction = "publish" | "subscribe" | "both";

/** One rule. */
export interface AclRule {
  permission: "allow" | "deny";
  action: AclAction;
  /** A topic filter; `%u` and `%c` are replaced by the user name and client id. */
  topic: string;
  /** When given, the rule applies only to clients with one of these user names. */
  users?: string[];
  /** When given, the rule applies only to clients with one of these client ids. */
  clients?: string[];
}

/** What the ACL decides when no rule matches (never for `$` topics: those are denied). */
export type AclDefault = "allow" | "deny";

/** Entries of one client's decision cache before it is cleared. */
const CACHE_LIMIT = 512;

/** One rule with its placeholders filled in for one client. */
interface ClientRule {
  allow: boolean;
  filter: string;
}

/** A client's compiled view of the rules. */
class ClientAcl {
  readonly generation: number;
  readonly publish: ClientRule[];
  readonly subscribe: ClientRule[];
  /** The decision when no rule matches a non-`$` topic. */
  readonly allowByDefault: boolean;
  readonly readCache = new Map<string, boolean>();
  readonly publishCache = new Map<string, boolean>();
  /** The last topic published to and its decision: publishers mostly repeat one topic. */
  lastPublishTopic = "";
  lastPublishDecision = false;

  constructor(
    generation: number,
    rules: { publish: ClientRule[]; subscribe: ClientRule[] },
    allowByDefault: boolean,
  ) {
    this.generation = generation;
    this.publish = rules.publish;
    this.subscribe = rules.subscribe;
    this.allowByDefault = allowByDefault;
  }
}

/**
 * Validates a rule's shape and topic filter.
 *
 * @returns A message naming what is wrong, or undefined when the rule is valid
 */
export function validateAclRule(rule: AclRule): string | undefined {
  if (rule.permission !== "allow" && rule.permission !== "deny") {
    return 'permission: expected "allow" or "deny"';
  }
  if (rule.action !== "publish" && rule.action !== "subscribe" && rule.action !== "both") {
    return 'action: expected "publish", "subscribe" or "both"';
  }
  if (typeof rule.topic !== "string") return "topic: expected a topic filter";
  // Validate with sample values in place of the placeholders.
  const invalid = validateTopicFilter(rule.topic.replaceAll("%u", "u").replaceAll("%c", "c"), {
    maxLength: 65_535,
    maxLevels: 65_535,
  });
  if (invalid) return `topic: ${invalid.message}`;
  return undefined;
}

/** Options for {@linkcode Acl}. */
export interface AclOptions {
  rules?: readonly AclRule[];
  default?: AclDefault;
}

/**
 * The rule set and its checks. Rules can be replaced at any time (a reload, the admin API); every
 * client sees the new rules at its next check.
 */
export class Acl {
  #rules: readonly AclRule[];
  #default: AclDefault;
  #generation = 0;
  #clients = new WeakMap<ClientInfo, ClientAcl>();

  constructor(options: AclOptions = {}) {
    this.#rules = checked(options.rules ?? []);
    this.#default = options.default ?? "allow";
  }

  /** The rules, in order. */
  get rules(): readonly AclRule[] {
    return this.#rules;
  }

  /** The decision when no rule matches. */
  get defaultPolicy(): AclDefault {
    return this.#default;
  }

  /**
   * Replaces the rules (and the default): the next check of every client uses them.
   *
   * @throws {TypeError} when a rule is invalid, naming its index and what is wrong
   */
  replace(rules: readonly AclRule[], defaultPolicy: AclDefault = this.#default): void {
    this.#rules = checked(rules);
    this.#default = defaultPolicy;
    this.#generation++;
  }

  /** May this client publish to this topic? */
  canPublish(client: ClientInfo, topic: string): boolean {
    const acl = this.#forClient(client);
    // No rule applies to this client: the default decides, no cache needed.
    if (acl.publish.length === 0) return decideTopic(acl.publish, topic, acl.allowByDefault);
    if (topic === acl.lastPublishTopic) return acl.lastPublishDecision;
    let decision = acl.publishCache.get(topic);
    if (decision === undefined) {
      decision = decideTopic(acl.publish, topic, acl.allowByDefault);
      remember(acl.publishCache, topic, decision);
    }
    acl.lastPublishTopic = topic;
    acl.lastPublishDecision = decision;
    return decision;
  }

  /** May this client receive a message on this topic? Called on every delivery. */
  canRead(client: ClientInfo, topic: string): boolean {
    const acl = this.#forClient(client);
    if (acl.subscribe.length === 0) return decideTopic(acl.subscribe, topic, acl.allowByDefault);
    let decision = acl.readCache.get(topic);
    if (decision === undefined) {
      decision = decideTopic(acl.subscribe, topic, acl.allowByDefault);
      remember(acl.readCache, topic, decision);
    }
    return decision;
  }

  /** May this client subscribe to this filter (without any `$share/` prefix)? */
  canSubscribe(client: ClientInfo, filter: string): boolean {
    const acl = this.#forClient(client);
    for (const rule of acl.subscribe) {
      if (filterCovers(rule.filter, filter)) return rule.allow;
    }
    return filter.charCodeAt(0) !== 0x24 /* $ */ && acl.allowByDefault;
  }

  #forClient(client: ClientInfo): ClientAcl {
    const cached = this.#clients.get(client);
    if (cached !== undefined && cached.generation === this.#generation) return cached;
    // A client's own rules (a token's scope) are all it may do: the default is deny for it.
    const own = clientRules(client);
    const compiled = new ClientAcl(
      this.#generation,
      compile(own ?? this.#rules, client),
      own === undefined && this.#default === "allow",
    );
    this.#clients.set(client, compiled);
    return compiled;
  }
}

/** A client's own rules, attached at authentication (e.g. a token's ACL claim). */
function clientRules(client: ClientInfo): readonly AclRule[] | undefined {
  const context = client.authContext as { aclRules?: readonly AclRule[] } | undefined;
  return context?.aclRules;
}

function checked(rules: readonly AclRule[]): readonly AclRule[] {
  rules.forEach((rule, index) => {
    const problem = validateAclRule(rule);
    if (problem) throw new TypeError(`Invalid ACL rule ${index}: ${problem}`);
  });
  return Object.freeze([...rules]);
}

function decideTopic(rules: ClientRule[], topic: string, allowByDefault: boolean): boolean {
  for (const rule of rules) {
    if (topicMatchesFilter(topic, rule.filter)) return rule.allow;
  }
  return topic.charCodeAt(0) !== 0x24 /* $ */ && allowByDefault;
}

function compile(
  rules: readonly AclRule[],
  client: ClientInfo,
): { publish: ClientRule[]; subscribe: ClientRule[] } {
  const publish: ClientRule[] = [];
  const subscribe: ClientRule[] = [];
  for (const rule of rules) {
    if (rule.users && (client.username === undefined || !rule.users.includes(client.username))) {
      continue;
    }
    if (rule.clients && !rule.clients.includes(client.clientId)) continue;
    const filter = fillPlaceholders(rule.topic, client);
    if (filter === undefined) continue;
    const compiled = { allow: rule.permission === "allow", filter };
    if (rule.action !== "subscribe") publish.push(compiled);
    if (rule.action !== "publish") subscribe.push(compiled);
  }
  return { publish, subscribe };
}

/** `%u`/`%c` replaced; undefined when a value is missing or would change the filter's shape. */
function fillPlaceholders(topic: string, client: ClientInfo): string | undefined {
  if (!topic.includes("%")) return topic;
  let filled = topic;
  if (filled.includes("%u")) {
    if (!isPlainLevel(client.username)) return undefined;
    filled = filled.replaceAll("%u", client.username!);
  }
  if (filled.includes("%c")) {
    if (!isPlainLevel(client.clientId)) return undefined;
    filled = filled.replaceAll("%c", client.clientId);
  }
  return filled;
}

function isPlainLevel(value: string | undefined): boolean {
  return value !== undefined && value !== "" && !/[/+#]/.test(value);
}

function remember(cache: Map<string, boolean>, topic: string, decision: boolean): void {
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(topic, decision);
}

/**
 * Whether every topic matched by `requested` is also matched by `rule` (both valid filters).
 *
 * @param rule The rule's topic filter
 * @param requested The filter a client asks to subscribe to
 */
export function filterCovers(rule: string, requested: string): boolean {
  // A rule starting with a wildcard does not reach `$` topics [MQTT-4.7.2-1].
  if (requested.charCodeAt(0) === 0x24 && (rule[0] === "+" || rule[0] === "#")) return false;
  const ruleLevels = rule.split("/");
  const requestedLevels = requested.split("/");
  for (let i = 0; i < ruleLevels.length; i++) {
    const level = ruleLevels[i];
    if (level === "#") return true;
    if (i >= requestedLevels.length) return false;
    const asked = requestedLevels[i];
    if (asked === "#") return false;
    if (level === "+") continue;
    if (asked === "+" || asked !== level) return false;
  }
  return ruleLevels.length === requestedLevels.length;
}
