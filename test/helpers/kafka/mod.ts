/**
 * A Kafka broker for tests: a **test double** that speaks the real Kafka wire protocol over TCP,
 * written here because no Kafka broker can be installed or run on these machines. Real clients
 * (kafkajs, and librdkafka through `kcat`) connect to it as to a single-node cluster; the tests
 * read what they produced with {@link KafkaTestServer.records} and inject faults with its controls.
 *
 * ```ts
 * await using kafka = await startKafkaTestServer({ topics: { events: 3 } });
 * // ... a producer sends to kafka.bootstrap ...
 * const records = await kafka.waitForRecords("events", 10);
 * ```
 *
 * Beside it, `kcat.ts` runs kcat (librdkafka) against the server to produce or read back, and
 * `kafkajs.ts` makes kafkajs clients with short retries whose socket failures can be awaited.
 *
 * What it implements (versions are what ApiVersions advertises, and all it accepts):
 * - ApiVersions v0-3 (v3 is the only flexible version; a higher version gets the v0 answer with
 *   UNSUPPORTED_VERSION, so a client downgrades), Metadata v0-8, Produce v3-8 (advertised from
 *   v0, as Kafka 4.0 does so that librdkafka before 2.10 still compresses), Fetch v4-11,
 *   ListOffsets v1-5, InitProducerId v0-1, FindCoordinator v0-2, JoinGroup v0-5, SyncGroup
 *   v0-3, Heartbeat v0-3, LeaveGroup v0-3, OffsetCommit v0-7, OffsetFetch v0-5, SaslHandshake
 *   v0-1 (v0 is followed by bare SASL tokens), SaslAuthenticate v0-1.
 * - Record batches of message format v2 only, CRC-32C checked (CORRUPT_MESSAGE), exactly one batch
 *   per partition (INVALID_RECORD), uncompressed or gzip; snappy, lz4 and zstd are answered with
 *   UNSUPPORTED_COMPRESSION_TYPE. Batches are stored as received, with the assigned base offset
 *   written in, and Fetch returns them whole (so a compressed batch comes back compressed).
 * - The idempotent producer: InitProducerId hands out producer ids (epoch 0); per partition the
 *   server keeps each producer's epoch and its last five batches' sequence ranges, answers a
 *   retried batch with its original offset without storing it again, and refuses a sequence gap
 *   with OUT_OF_ORDER_SEQUENCE_NUMBER and an old epoch with INVALID_PRODUCER_EPOCH.
 * - Topics declared up front or created by Metadata (when the request allows it), each partition
 *   led by this one broker; Fetch waits up to max_wait_ms for min_bytes like Kafka's long poll.
 * - Consumer groups (Kafka's classic protocol, see `group.ts`): joins rebalance the group, the
 *   leader's SyncGroup hands out assignments, heartbeats answer REBALANCE_IN_PROGRESS, members
 *   silent past their session timeout or leaving are dropped; committed offsets are kept per group.
 * - SASL PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 against a user list; until a connection has
 *   authenticated, only ApiVersions, SaslHandshake and SaslAuthenticate are served.
 * - Fault controls: stop() and start() on the same port with the data kept, slow(ms),
 *   failNext(apiKey, errorCode, count, { afterAppend }), refuse().
 * - Bounds: a frame over maxRequestBytes, a request that does not decode (or has bytes left over),
 *   an unknown API key or an unsupported version closes that connection only, noted in
 *   {@link KafkaTestServer.problems}. Every request is logged in {@link KafkaTestServer.requests}.
 *
 * Where it differs from Kafka:
 * - One broker, no replication: every write is committed on arrival, so acks 1 and -1 behave
 *   alike, the high watermark is the log end, and timeout_ms is ignored.
 * - No transactions (a transactional id is refused with TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
 *   transactional batches with INVALID_TXN_STATE), no fetch sessions (the session id is always
 *   0), no log retention, compaction or deletion (the log starts at 0), no quotas (throttle time
 *   is always 0), no ACLs, no TLS, no SASL re-authentication, no admin APIs (CreateTopics,
 *   DescribeGroups and the like are not advertised).
 * - Groups: a member id is given at the first JoinGroup (no MEMBER_ID_REQUIRED round trip), every
 *   JoinGroup starts a rebalance, there is no initial rebalance delay, session timeouts are not
 *   bounded, group instance ids are echoed but give no static membership, and stop() ends every
 *   membership (committed offsets stay).
 * - Leader epochs are always 0; timestamps are the producer's (CreateTime); a record batch is not
 *   recompressed or rewritten beyond its base offset and partition leader epoch.
 * - Flexible versions (tagged fields, compact encodings) exist only for ApiVersions v3: the server
 *   advertises the older versions of every other API, which kafkajs and librdkafka both use.
 * - Records live in memory only and survive stop()/start(), not the process.
 *
 * @module
 */

export {
  type FailOptions,
  KafkaTestServer,
  type KafkaTestServerOptions,
  type RequestLogEntry,
  startKafkaTestServer,
} from "./server.ts";
export type { KafkaRecord } from "./log.ts";
export type { KafkaHeader } from "./records.ts";
export { ApiKey, ErrorCode } from "./protocol.ts";
export type { SaslMechanism } from "./sasl.ts";
