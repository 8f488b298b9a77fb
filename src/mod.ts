/**
 * Perch: an MQTT 3.1.1 and 5.0 broker for Deno and Bun.
 *
 * This is the public surface that `routes/` (the admin API) and `cluster/` (the NATS backbone)
 * build on, and what an embedding application imports.
 *
 * @example Embed a broker on a free port, on whichever runtime runs it
 * ```ts
 * import {
 *   Broker,
 *   configSchema,
 *   createSystemClock,
 *   MemoryBackbone,
 *   nullLogger,
 *   runtimeSockets,
 *   toBrokerOptions,
 * } from "./mod.ts";
 *
 * const config = configSchema.parse({ sys: { enabled: false } });
 * const clock = createSystemClock();
 * const backbone = new MemoryBackbone({ clock });
 * await backbone.start({ id: config.node.id, version: "example", startedAt: clock.now() });
 * const broker = new Broker({
 *   options: toBrokerOptions(config),
 *   backbone,
 *   clock,
 *   logger: nullLogger,
 * });
 * broker.start();
 * const listener = runtimeSockets().listenTcp({ hostname: "127.0.0.1", port: 0 }, broker.accept);
 * console.log(`MQTT on port ${listener.port}`);
 * listener.close();
 * await broker.close();
 * ```
 *
 * @module
 */

export {
  Broker,
  type BrokerDeps,
  type ConnectedClientInfo,
  type DeliveryTotals,
  type SessionInfo,
} from "./broker/broker.ts";
export type { BrokerOptions } from "./broker/options.ts";
export { BrokerStats } from "./broker/stats.ts";
export { toBrokerOptions, VERSION } from "./compose.ts";
export type {
  Backbone,
  BrokerEvent,
  ConfigEntry,
  ConfigStore,
  EventListenerKind,
  EventStream,
  InboundKey,
  LiveListener,
  LiveTarget,
  Lock,
  MessageBus,
  NodeInfo,
  NodeRegistry,
  NodeStatus,
  Outbox,
  OutboxAppend,
  OutboxEntry,
  OutboxLimits,
  OutboxStore,
  PublishOutcome,
  QueueConsumer,
  QueuedDelivery,
  QueueHandle,
  QueueKey,
  QueueLimits,
  QueueSize,
  QueueStore,
  RequestHandler,
  RetainedStore,
  SessionClaim,
  SessionStore,
  StoredSession,
} from "./backbone/backbone.ts";
export { DONE, roomForWaiting, STUCK_AFTER_MS } from "./backbone/backbone.ts";
export { BackboneError, type BackboneFailure, failureOf } from "./backbone/errors.ts";
export {
  isExpired,
  type Message,
  NEVER_EXPIRES,
  type SessionRecord,
  type SubscriptionRecord,
  type WillRecord,
} from "./domain/types.ts";
export { MemoryBackbone } from "./backbone/memory.ts";
export type { MessageSink, Publisher, SinkOutcome, SinkTake } from "./domain/sink.ts";
export {
  KafkaBridge,
  type KafkaBridgeOptions,
  type KafkaBridgeSettings,
  type KafkaBridgeState,
  type KafkaBridgeStatus,
  type KafkaMappingView,
  type MappingChange,
  type MappingSource,
  type MappingStats,
} from "./bridge/kafka_bridge.ts";
export {
  type KafkaMapping,
  type KafkaMappingInput,
  type MappingIssue,
  PAYLOAD_ENCODINGS,
  VALUE_FORMATS,
} from "./bridge/mapping.ts";
export type {
  AuthStep,
  EnhancedAuthenticator,
  EnhancedAuthMethod,
  EnhancedAuthMethods,
} from "./auth/enhanced.ts";
export { createScramMethod, SCRAM_SHA_256, type ScramMethodOptions } from "./auth/scram.ts";
export {
  constantTimeEqual,
  deriveScramCredentials,
  parseScramCredentials,
  type ScramCredentials,
  type ScramCredentialStore,
  verifyScramPassword,
} from "./auth/credentials.ts";
export type {
  AuthenticateRequest,
  AuthResult,
  BrokerHooks,
  ClientInfo,
  DisconnectInfo,
  PublishRequest,
  SubscribeRequest,
} from "./hooks/hooks.ts";
export {
  MqttError,
  PacketType,
  type Properties,
  type ProtocolVersion,
  type QoS,
  ReasonCode,
} from "./codec/mod.ts";
export type {
  AcceptHandler,
  Connection,
  ConnectionHandler,
  Listener,
  TransportKind,
} from "./transport/transport.ts";
export { DenoListener } from "./transport/deno_listener.ts";
export {
  parseSharedFilter,
  RetainedIndex,
  SubscriptionTrie,
  topicMatchesFilter,
  validateTopicFilter,
  validateTopicName,
} from "./topic/mod.ts";
export { decodeProperties, propertiesLength, writeProperties } from "./codec/properties.ts";
export { runtimeSockets } from "./transport/runtime.ts";
export type { Sockets } from "./transport/sockets.ts";
export { encodePublishHeader } from "./codec/mod.ts";
export { Acl, type AclDefault, type AclRule, validateAclRule } from "./auth/acl.ts";
export { type AclDocument, AclRuleFile } from "./auth/acl_file.ts";
export { RuleIndexError, SharedAclRules } from "./auth/shared_acl.ts";
export { SharedUsers } from "./auth/shared_users.ts";
export {
  type Ban,
  BAN_KINDS,
  type BanKind,
  BanList,
  BanListFullError,
  withBans,
} from "./auth/bans.ts";
export { ClientEvents } from "./ops/client_events.ts";
export { Notifier } from "./events/notifier.ts";
export { type AgentRecord, AgentRegistry } from "./events/agents.ts";
export type { AgentFacts } from "./domain/agent_facts.ts";
export type { SinkQueue } from "./events/queue.ts";
export { PasswordFile, validateUsername } from "./auth/password_file.ts";
export { type Config, ConfigError, configSchema, loadConfig } from "./config/mod.ts";
export { type Clock, createSystemClock, type TimerId } from "./util/clock.ts";
export { type EventLoopLag, EventLoopLagMonitor } from "./util/event_loop_lag.ts";
export type { IdleCollectionStats } from "./ops/idle_collection.ts";
export { Fifo } from "./util/fifo.ts";
export { createLogger, type Logger, nullLogger } from "./util/logger.ts";
