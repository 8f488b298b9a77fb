/**
 * The request types this server answers: each decodes its request body at the negotiated version
 * and writes the response body (the server frames it). Versions are the non-flexible ones both
 * kafkajs and librdkafka use, plus ApiVersions v3 (flexible, with its always-v0 response header),
 * which librdkafka tries first.
 *
 * @module
 */

import type { GroupCoordinator } from "./group.ts";
import { type AppendResult, type PartitionLog, type Store, validTopicName } from "./log.ts";
import { ApiKey, ErrorCode } from "./protocol.ts";
import {
  type BatchHeader,
  type BatchRecord,
  Compression,
  decodeBatchRecords,
  RecordSetError,
  splitBatches,
} from "./records.ts";
import type { SaslExchange, SaslUsers } from "./sasl.ts";
import { type Reader, Writer } from "./wire.ts";

/** What the handlers see of the server. */
export interface ServerState {
  readonly store: Store;
  readonly nodeId: number;
  readonly host: string;
  readonly port: number;
  readonly clusterId: string;
  readonly autoCreateTopics: boolean;
  readonly defaultPartitions: number;
  readonly maxBatchBytes: number;
  readonly sasl: SaslUsers | undefined;
  readonly groups: GroupCoordinator;
  /** Aborted when the server stops: ends a Fetch's wait for data. */
  readonly signal: AbortSignal;
  allocateProducerId(): number;
}

/** Per-connection SASL state. */
export interface ConnectionState {
  authenticated: boolean;
  /** The mechanism's exchange, from a successful SaslHandshake until it ends. */
  exchange: SaslExchange | undefined;
  /** After SaslHandshake v0 the client sends bare length-prefixed SASL tokens, not requests. */
  rawSasl: boolean;
  user: string | undefined;
  /** Close the connection once the current response is written (a failed authentication). */
  closeAfterResponse: boolean;
}

/** An error a test asked for with failNext. */
export interface InjectedError {
  errorCode: number;
  /** Produce only: append the records first, then answer with the error. */
  afterAppend: boolean;
}

export interface RequestContext {
  server: ServerState;
  connection: ConnectionState;
  version: number;
  clientId: string | null;
  injected: InjectedError | undefined;
}

export interface Api {
  key: number;
  name: string;
  minVersion: number;
  maxVersion: number;
  /**
   * Lowest version ApiVersions reports when it is below the lowest one served: Kafka 4.0 reports
   * Produce from v0 while refusing v0-2 (KAFKA-18659), because librdkafka before 2.10 compresses
   * only when the broker's range includes Produce v0 (librdkafka issue 4956).
   */
  advertisedMinVersion?: number;
  /** First version with flexible (tagged-field) encoding, if any is supported. */
  flexibleFrom?: number;
  /** The response body, or null when none is sent (Produce with acks=0). */
  handle(ctx: RequestContext, r: Reader): Promise<Writer | null>;
}

/** Longest a record batch may inflate to, whatever maxBatchBytes is. */
const INFLATE_LIMIT = 64 * 1024 * 1024;

/** librdkafka and kafkajs read a missing throttle as 0; this server never throttles. */
const NO_THROTTLE = 0;

// ---------------------------------------------------------------------------------------------
// ApiVersions

function apiVersions(ctx: RequestContext, r: Reader): Promise<Writer> {
  const v = ctx.version;
  if (v >= 3) {
    r.compactNullableString(); // client_software_name
    r.compactNullableString(); // client_software_version
    r.skipTags();
  }
  return Promise.resolve(apiVersionsBody(v, ctx.injected?.errorCode ?? ErrorCode.NONE));
}

/**
 * The ApiVersions body at version `v`. A request above the highest supported version is answered
 * at v0 with UNSUPPORTED_VERSION and the list, as Kafka does, so the client can retry lower.
 */
export function apiVersionsBody(v: number, errorCode: number): Writer {
  const w = new Writer().int16(errorCode);
  const keys = errorCode === ErrorCode.NONE || errorCode === ErrorCode.UNSUPPORTED_VERSION
    ? [...APIS.values()]
    : [];
  const entry = (w: Writer, api: Api) => {
    w.int16(api.key).int16(api.advertisedMinVersion ?? api.minVersion).int16(api.maxVersion);
    if (v >= 3) w.noTags();
  };
  if (v >= 3) w.compactArray(keys, entry);
  else w.array(keys, entry);
  if (v >= 1) w.int32(NO_THROTTLE);
  if (v >= 3) w.noTags();
  return w;
}

// ---------------------------------------------------------------------------------------------
// Metadata

function metadata(ctx: RequestContext, r: Reader): Promise<Writer> {
  const v = ctx.version;
  const { server } = ctx;
  // v0: an empty list means all topics; v1+: null means all, empty means none.
  const requested = v === 0 ? r.array((r) => r.string()) : r.nullableArray((r) => r.string());
  const all = v === 0 ? requested!.length === 0 : requested === null;
  const allowAutoCreation = v >= 4 ? r.bool() : true;
  if (v >= 8) {
    r.bool(); // include_cluster_authorized_operations
    r.bool(); // include_topic_authorized_operations
  }
  const names = all ? [...server.store.topics.keys()] : requested!;

  const w = new Writer();
  if (v >= 3) w.int32(NO_THROTTLE);
  w.array([server], (w, s) => {
    w.int32(s.nodeId).string(s.host).int32(s.port);
    if (v >= 1) w.nullableString(null); // rack
  });
  if (v >= 2) w.nullableString(server.clusterId);
  if (v >= 1) w.int32(server.nodeId); // controller
  w.array(names, (w, name) => {
    let errorCode: number = ctx.injected?.errorCode ?? ErrorCode.NONE;
    let partitions: PartitionLog[] = [];
    if (errorCode === ErrorCode.NONE) {
      const existing = server.store.topics.get(name);
      if (existing) partitions = existing;
      else if (!validTopicName(name)) errorCode = ErrorCode.INVALID_TOPIC_EXCEPTION;
      else if (server.autoCreateTopics && allowAutoCreation) {
        partitions = server.store.create(name, server.defaultPartitions);
      } else errorCode = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
    }
    w.int16(errorCode).string(name);
    if (v >= 1) w.bool(false); // is_internal
    w.array(partitions, (w, log) => {
      w.int16(ErrorCode.NONE).int32(log.index).int32(server.nodeId);
      if (v >= 7) w.int32(0); // leader_epoch
      w.array([server.nodeId], (w, id) => w.int32(id)); // replicas
      w.array([server.nodeId], (w, id) => w.int32(id)); // isr
      if (v >= 5) w.array([], () => {}); // offline_replicas
    });
    if (v >= 8) w.int32(-2147483648); // topic_authorized_operations: not requested
  });
  if (v >= 8) w.int32(-2147483648); // cluster_authorized_operations
  return Promise.resolve(w);
}

// ---------------------------------------------------------------------------------------------
// Produce

interface PartitionResult {
  index: number;
  errorCode: number;
  baseOffset: number;
  message: string | null;
}

async function produce(ctx: RequestContext, r: Reader): Promise<Writer | null> {
  const v = ctx.version;
  r.nullableString(); // transactional_id: transactions are not supported (batches say so)
  const acks = r.int16();
  r.int32(); // timeout_ms: every write completes at once
  const topics = r.array((r) => ({
    name: r.string(),
    partitions: r.array((r) => ({ index: r.int32(), records: r.bytesField() })),
  }));

  const results = await Promise.all(topics.map(async (topic) => ({
    name: topic.name,
    partitions: await Promise.all(
      topic.partitions.map((p) => produceToPartition(ctx, acks, topic.name, p.index, p.records)),
    ),
  })));
  ctx.server.store.appended();
  if (acks === 0) return null;

  const w = new Writer();
  w.array(results, (w, topic) => {
    w.string(topic.name);
    w.array(topic.partitions, (w, p) => {
      const ok = p.errorCode === ErrorCode.NONE;
      w.int32(p.index).int16(p.errorCode).int64(ok ? p.baseOffset : -1);
      w.int64(-1); // log_append_time_ms: topics use CreateTime
      if (v >= 5) w.int64(ok ? 0 : -1); // log_start_offset
      if (v >= 8) w.array([], () => {}).nullableString(p.message); // record_errors, error_message
    });
  });
  w.int32(NO_THROTTLE);
  return w;
}

async function produceToPartition(
  ctx: RequestContext,
  acks: number,
  topic: string,
  index: number,
  records: Uint8Array | null,
): Promise<PartitionResult> {
  const fail = (errorCode: number, message: string | null = null): PartitionResult => ({
    index,
    errorCode,
    baseOffset: -1,
    message,
  });
  const injected = ctx.injected;
  if (injected && !injected.afterAppend) return fail(injected.errorCode);
  if (acks !== -1 && acks !== 0 && acks !== 1) return fail(ErrorCode.INVALID_REQUIRED_ACKS);
  const log = ctx.server.store.partition(topic, index);
  if (!log) return fail(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);

  let batch: BatchHeader;
  let decoded: BatchRecord[];
  try {
    const batches = splitBatches(records ?? new Uint8Array());
    if (batches.length !== 1) {
      return fail(ErrorCode.INVALID_RECORD, `${batches.length} record batches, not exactly one`);
    }
    batch = batches[0];
    if (batch.bytes.length > ctx.server.maxBatchBytes) {
      return fail(ErrorCode.MESSAGE_TOO_LARGE, `batch of ${batch.bytes.length} bytes`);
    }
    if (batch.compression !== Compression.none && batch.compression !== Compression.gzip) {
      return fail(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, `codec ${batch.compression}`);
    }
    if (batch.transactional || batch.control) {
      return fail(ErrorCode.INVALID_TXN_STATE, "transactions are not supported");
    }
    decoded = await decodeBatchRecords(batch, INFLATE_LIMIT);
  } catch (err) {
    if (err instanceof RecordSetError) return fail(err.errorCode, err.message);
    throw err;
  }
  const result: AppendResult = log.append(batch, decoded);
  if (!result.ok) return fail(result.errorCode, result.message);
  if (injected) return fail(injected.errorCode);
  return { index, errorCode: ErrorCode.NONE, baseOffset: result.baseOffset, message: null };
}

// ---------------------------------------------------------------------------------------------
// Fetch

interface FetchPartition {
  partition: number;
  leaderEpoch: number;
  fetchOffset: number;
  maxBytes: number;
}

interface FetchAnswer {
  partition: number;
  errorCode: number;
  highWatermark: number;
  batches: Uint8Array[];
}

async function fetch(ctx: RequestContext, r: Reader): Promise<Writer> {
  const v = ctx.version;
  r.int32(); // replica_id: -1 for consumers
  const maxWaitMs = r.int32();
  const minBytes = r.int32();
  const maxBytes = r.int32();
  r.int8(); // isolation_level: no transactions, so every offset below the high watermark is stable
  const sessionId = v >= 7 ? r.int32() : 0;
  if (v >= 7) r.int32(); // session_epoch
  const topics = r.array((r) => ({
    topic: r.string(),
    partitions: r.array((r): FetchPartition => {
      const partition = r.int32();
      const leaderEpoch = v >= 9 ? r.int32() : -1;
      const fetchOffset = r.int64();
      if (v >= 5) r.int64(); // log_start_offset: a follower's, unused
      return { partition, leaderEpoch, fetchOffset, maxBytes: r.int32() };
    }),
  }));
  if (v >= 7) r.array((r) => ({ topic: r.string(), partitions: r.array((r) => r.int32()) }));
  if (v >= 11) r.string(); // rack_id

  const answer = () => {
    let total = 0;
    return topics.map(({ topic, partitions }) => ({
      topic,
      partitions: partitions.map((p): FetchAnswer => {
        const result = fetchPartition(ctx, topic, p, maxBytes - total, total === 0);
        for (const batch of result.batches) total += batch.length;
        return result;
      }),
    }));
  };
  const size = (answers: ReturnType<typeof answer>) =>
    answers.reduce((n, t) => n + t.partitions.reduce((m, p) => m + p.batches.length, 0), 0);
  // As in Kafka, a partition error is worth answering at once: only an error-free fetch waits.
  const failed = (answers: ReturnType<typeof answer>) =>
    answers.some((t) => t.partitions.some((p) => p.errorCode !== ErrorCode.NONE));

  // No fetch sessions: a session id this server never gave out is FETCH_SESSION_ID_NOT_FOUND.
  const errorCode = sessionId === 0 ? ErrorCode.NONE : ErrorCode.FETCH_SESSION_ID_NOT_FOUND;
  let answers = errorCode === ErrorCode.NONE ? answer() : [];
  const deadline = Date.now() + maxWaitMs;
  while (
    errorCode === ErrorCode.NONE && !failed(answers) && size(answers) < minBytes &&
    Date.now() < deadline && !ctx.server.signal.aborted
  ) {
    await appendOrTimeout(ctx.server, deadline - Date.now());
    answers = answer();
  }

  const w = new Writer().int32(NO_THROTTLE);
  if (v >= 7) w.int16(errorCode).int32(0); // session_id 0: no session was created
  w.array(answers, (w, t) => {
    w.string(t.topic);
    w.array(t.partitions, (w, p) => {
      w.int32(p.partition).int16(p.errorCode).int64(p.highWatermark);
      w.int64(p.highWatermark); // last_stable_offset
      if (v >= 5) w.int64(p.errorCode === ErrorCode.NONE ? 0 : -1); // log_start_offset
      w.array([], () => {}); // aborted_transactions
      if (v >= 11) w.int32(-1); // preferred_read_replica
      w.int32(p.batches.reduce((n, b) => n + b.length, 0));
      for (const batch of p.batches) w.raw(batch);
    });
  });
  return w;
}

/** Waits until something is appended anywhere, `ms` pass, or the server stops. */
function appendOrTimeout(server: ServerState, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      off();
      server.signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    const off = server.store.onAppend(done);
    server.signal.addEventListener("abort", done);
  });
}

/**
 * One partition's share of a Fetch: whole stored batches from the one holding `fetchOffset`, within
 * the partition's and the response's byte limits, except that the response's first batch is sent
 * whatever its size (KIP-74), so a consumer always makes progress.
 */
function fetchPartition(
  ctx: RequestContext,
  topic: string,
  p: FetchPartition,
  bytesLeft: number,
  first: boolean,
): FetchAnswer {
  const error = (errorCode: number): FetchAnswer => ({
    partition: p.partition,
    errorCode,
    highWatermark: -1,
    batches: [],
  });
  if (ctx.injected) return error(ctx.injected.errorCode);
  const log = ctx.server.store.partition(topic, p.partition);
  if (!log) return error(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  if (p.leaderEpoch > 0) return error(ErrorCode.UNKNOWN_LEADER_EPOCH);
  if (p.fetchOffset < 0 || p.fetchOffset > log.highWatermark) {
    return error(ErrorCode.OFFSET_OUT_OF_RANGE);
  }
  const batches: Uint8Array[] = [];
  let size = 0;
  for (const stored of log.batches) {
    if (stored.lastOffset < p.fetchOffset) continue;
    const length = stored.bytes.length;
    const fits = size + length <= p.maxBytes && size + length <= bytesLeft;
    if (!fits && !(first && batches.length === 0)) break;
    batches.push(stored.bytes);
    size += length;
  }
  return {
    partition: p.partition,
    errorCode: ErrorCode.NONE,
    highWatermark: log.highWatermark,
    batches,
  };
}

// ---------------------------------------------------------------------------------------------
// ListOffsets

const LATEST = -1;
const EARLIEST = -2;

function listOffsets(ctx: RequestContext, r: Reader): Promise<Writer> {
  const v = ctx.version;
  r.int32(); // replica_id
  if (v >= 2) r.int8(); // isolation_level
  const topics = r.array((r) => ({
    name: r.string(),
    partitions: r.array((r) => {
      const partition = r.int32();
      const leaderEpoch = v >= 4 ? r.int32() : -1;
      return { partition, leaderEpoch, timestamp: r.int64() };
    }),
  }));
  const w = new Writer();
  if (v >= 2) w.int32(NO_THROTTLE);
  w.array(topics, (w, t) => {
    w.string(t.name);
    w.array(t.partitions, (w, p) => {
      const log = ctx.server.store.partition(t.name, p.partition);
      let errorCode: number = ErrorCode.NONE;
      let timestamp = -1;
      let offset = -1;
      if (ctx.injected) errorCode = ctx.injected.errorCode;
      else if (!log) errorCode = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
      else if (p.leaderEpoch > 0) errorCode = ErrorCode.UNKNOWN_LEADER_EPOCH;
      else if (p.timestamp === LATEST) offset = log.highWatermark;
      else if (p.timestamp === EARLIEST) offset = 0;
      else {
        const found = log.offsetForTimestamp(p.timestamp);
        if (found) ({ timestamp, offset } = found);
      }
      w.int32(p.partition).int16(errorCode).int64(timestamp).int64(offset);
      if (v >= 4) w.int32(errorCode === ErrorCode.NONE ? 0 : -1); // leader_epoch
    });
  });
  return Promise.resolve(w);
}

// ---------------------------------------------------------------------------------------------
// InitProducerId, FindCoordinator

function initProducerId(ctx: RequestContext, r: Reader): Promise<Writer> {
  const transactionalId = r.nullableString();
  r.int32(); // transaction_timeout_ms
  let errorCode: number = ctx.injected?.errorCode ?? ErrorCode.NONE;
  // Transactions are not implemented: refuse a transactional id outright.
  if (errorCode === ErrorCode.NONE && transactionalId !== null) {
    errorCode = ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
  }
  const ok = errorCode === ErrorCode.NONE;
  const w = new Writer().int32(NO_THROTTLE).int16(errorCode);
  w.int64(ok ? ctx.server.allocateProducerId() : -1).int16(ok ? 0 : -1);
  return Promise.resolve(w);
}

function findCoordinator(ctx: RequestContext, r: Reader): Promise<Writer> {
  const v = ctx.version;
  r.string(); // key: a group id or transactional id
  const keyType = v >= 1 ? r.int8() : 0;
  let errorCode: number = ctx.injected?.errorCode ?? ErrorCode.NONE;
  if (errorCode === ErrorCode.NONE && keyType !== 0) {
    errorCode = ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
  }
  const ok = errorCode === ErrorCode.NONE;
  const w = new Writer();
  if (v >= 1) w.int32(NO_THROTTLE);
  w.int16(errorCode);
  if (v >= 1) w.nullableString(ok ? null : "not available");
  w.int32(ok ? ctx.server.nodeId : -1).string(ok ? ctx.server.host : "").int32(
    ok ? ctx.server.port : -1,
  );
  return Promise.resolve(w);
}

// ---------------------------------------------------------------------------------------------
// Consumer groups

async function joinGroup(ctx: RequestContext, r: Reader): Promise<Writer> {
  const v = ctx.version;
  const groupId = r.string();
  const sessionTimeoutMs = r.int32();
  const rebalanceTimeoutMs = v >= 1 ? r.int32() : sessionTimeoutMs;
  const memberId = r.string();
  const groupInstanceId = v >= 5 ? r.nullableString() : null;
  const protocolType = r.string();
  const protocols = r.array((r) => ({
    name: r.string(),
    metadata: r.bytesField() ?? new Uint8Array(),
  }));
  const answer = ctx.injected
    ? {
      errorCode: ctx.injected.errorCode,
      generationId: -1,
      protocolName: "",
      leader: "",
      memberId,
      members: [],
    }
    : await ctx.server.groups.join({
      groupId,
      memberId,
      groupInstanceId,
      clientId: ctx.clientId ?? "",
      sessionTimeoutMs,
      rebalanceTimeoutMs,
      protocolType,
      protocols,
    });
  const w = new Writer();
  if (v >= 2) w.int32(NO_THROTTLE);
  w.int16(answer.errorCode).int32(answer.generationId).string(answer.protocolName)
    .string(answer.leader).string(answer.memberId);
  w.array(answer.members, (w, m) => {
    w.string(m.memberId);
    if (v >= 5) w.nullableString(m.groupInstanceId);
    w.bytesField(m.metadata);
  });
  return w;
}

async function syncGroup(ctx: RequestContext, r: Reader): Promise<Writer> {
  const v = ctx.version;
  const groupId = r.string();
  const generation = r.int32();
  const memberId = r.string();
  if (v >= 3) r.nullableString(); // group_instance_id
  const assignments = new Map(
    r.array((r) => [r.string(), r.bytesField() ?? new Uint8Array()] as const),
  );
  const answer = ctx.injected
    ? { errorCode: ctx.injected.errorCode, assignment: new Uint8Array() }
    : await ctx.server.groups.sync(groupId, generation, memberId, assignments);
  const w = new Writer();
  if (v >= 1) w.int32(NO_THROTTLE);
  return w.int16(answer.errorCode).bytesField(answer.assignment);
}

function heartbeat(ctx: RequestContext, r: Reader): Promise<Writer> {
  const v = ctx.version;
  const groupId = r.string();
  const generation = r.int32();
  const memberId = r.string();
  if (v >= 3) r.nullableString(); // group_instance_id
  const errorCode = ctx.injected?.errorCode ??
    ctx.server.groups.heartbeat(groupId, generation, memberId);
  const w = new Writer();
  if (v >= 1) w.int32(NO_THROTTLE);
  return Promise.resolve(w.int16(errorCode));
}

function leaveGroup(ctx: RequestContext, r: Reader): Promise<Writer> {
  const v = ctx.version;
  const groupId = r.string();
  const members = v >= 3
    ? r.array((r) => ({ memberId: r.string(), groupInstanceId: r.nullableString() }))
    : [{ memberId: r.string(), groupInstanceId: null }];
  const errors = ctx.injected
    ? members.map(() => ctx.injected!.errorCode)
    : ctx.server.groups.leave(groupId, members.map((m) => m.memberId));
  const w = new Writer();
  if (v >= 1) w.int32(NO_THROTTLE);
  if (v < 3) return Promise.resolve(w.int16(errors[0]));
  w.int16(ErrorCode.NONE);
  w.array(members.map((m, i) => ({ ...m, errorCode: errors[i] })), (w, m) => {
    w.string(m.memberId).nullableString(m.groupInstanceId).int16(m.errorCode);
  });
  return Promise.resolve(w);
}

function offsetCommit(ctx: RequestContext, r: Reader): Promise<Writer> {
  const v = ctx.version;
  const groupId = r.string();
  const generation = v >= 1 ? r.int32() : -1;
  const memberId = v >= 1 ? r.string() : "";
  if (v >= 7) r.nullableString(); // group_instance_id
  if (v >= 2 && v <= 4) r.int64(); // retention_time_ms
  const topics = r.array((r) => ({
    name: r.string(),
    partitions: r.array((r) => {
      const partition = r.int32();
      const offset = r.int64();
      if (v >= 6) r.int32(); // committed_leader_epoch
      if (v === 1) r.int64(); // commit_timestamp
      return { partition, offset, metadata: r.nullableString() };
    }),
  }));
  const { store, groups } = ctx.server;
  const known = (topic: string, partition: number) => !!store.partition(topic, partition);
  const offsets = topics.flatMap((t) =>
    t.partitions.filter((p) => known(t.name, p.partition)).map((p) => ({ topic: t.name, ...p }))
  );
  const errorCode = ctx.injected?.errorCode ??
    groups.commit(groupId, generation, memberId, offsets);
  const w = new Writer();
  if (v >= 3) w.int32(NO_THROTTLE);
  w.array(topics, (w, t) => {
    w.string(t.name).array(t.partitions, (w, p) => {
      const unknown = errorCode === ErrorCode.NONE && !known(t.name, p.partition);
      w.int32(p.partition).int16(unknown ? ErrorCode.UNKNOWN_TOPIC_OR_PARTITION : errorCode);
    });
  });
  return Promise.resolve(w);
}

function offsetFetch(ctx: RequestContext, r: Reader): Promise<Writer> {
  const v = ctx.version;
  const groupId = r.string();
  const topics = r.nullableArray((r) => ({
    name: r.string(),
    partitions: r.array((r) => r.int32()),
  }));
  const errorCode = ctx.injected?.errorCode ?? ErrorCode.NONE;
  const committed = ctx.server.groups.committed(groupId, topics);
  const w = new Writer();
  if (v >= 3) w.int32(NO_THROTTLE);
  w.array(committed, (w, t) => {
    w.string(t.name).array(t.partitions, (w, p) => {
      w.int32(p.partition).int64(errorCode === ErrorCode.NONE ? p.offset : -1);
      if (v >= 5) w.int32(-1); // committed_leader_epoch
      w.nullableString(p.metadata).int16(errorCode);
    });
  });
  if (v >= 2) w.int16(errorCode);
  return Promise.resolve(w);
}

// ---------------------------------------------------------------------------------------------
// SASL

function saslHandshake(ctx: RequestContext, r: Reader): Promise<Writer> {
  const mechanism = r.string();
  const { server, connection } = ctx;
  const offered = server.sasl?.mechanisms ?? [];
  let errorCode: number = ctx.injected?.errorCode ?? ErrorCode.NONE;
  if (errorCode === ErrorCode.NONE) {
    if (!server.sasl || connection.authenticated || connection.exchange) {
      errorCode = ErrorCode.ILLEGAL_SASL_STATE;
    } else {
      connection.exchange = server.sasl.exchange(mechanism);
      if (connection.exchange) connection.rawSasl = ctx.version === 0;
      else errorCode = ErrorCode.UNSUPPORTED_SASL_MECHANISM;
    }
  }
  if (errorCode !== ErrorCode.NONE && server.sasl) connection.closeAfterResponse = true;
  return Promise.resolve(new Writer().int16(errorCode).array(offered, (w, m) => w.string(m)));
}

async function saslAuthenticate(ctx: RequestContext, r: Reader): Promise<Writer> {
  const token = r.bytesField() ?? new Uint8Array();
  const { connection } = ctx;
  const w = new Writer();
  const answer = (errorCode: number, message: string | null, bytes: Uint8Array) => {
    w.int16(errorCode).nullableString(message).bytesField(bytes);
    if (ctx.version >= 1) w.int64(0); // session_lifetime_ms: no re-authentication
    if (errorCode !== ErrorCode.NONE) connection.closeAfterResponse = true;
    return w;
  };
  if (ctx.injected) return answer(ctx.injected.errorCode, "injected", new Uint8Array());
  const exchange = connection.exchange;
  if (!exchange || connection.rawSasl) {
    return answer(ErrorCode.ILLEGAL_SASL_STATE, "no SASL handshake", new Uint8Array());
  }
  const step = await exchange.step(token);
  if (step.state === "failure") {
    connection.exchange = undefined;
    return answer(ErrorCode.SASL_AUTHENTICATION_FAILED, step.message, new Uint8Array());
  }
  if (step.state === "success") {
    connection.exchange = undefined;
    connection.authenticated = true;
    connection.user = step.user;
  }
  return answer(ErrorCode.NONE, null, step.response);
}

// ---------------------------------------------------------------------------------------------

/** Every API this server answers, by key, with the versions it advertises in ApiVersions. */
export const APIS: ReadonlyMap<number, Api> = new Map(
  ([
    {
      key: ApiKey.Produce,
      name: "Produce",
      minVersion: 3,
      maxVersion: 8,
      advertisedMinVersion: 0,
      handle: produce,
    },
    { key: ApiKey.Fetch, name: "Fetch", minVersion: 4, maxVersion: 11, handle: fetch },
    {
      key: ApiKey.ListOffsets,
      name: "ListOffsets",
      minVersion: 1,
      maxVersion: 5,
      handle: listOffsets,
    },
    { key: ApiKey.Metadata, name: "Metadata", minVersion: 0, maxVersion: 8, handle: metadata },
    {
      key: ApiKey.FindCoordinator,
      name: "FindCoordinator",
      minVersion: 0,
      maxVersion: 2,
      handle: findCoordinator,
    },
    {
      key: ApiKey.OffsetCommit,
      name: "OffsetCommit",
      minVersion: 0,
      maxVersion: 7,
      handle: offsetCommit,
    },
    {
      key: ApiKey.OffsetFetch,
      name: "OffsetFetch",
      minVersion: 0,
      maxVersion: 5,
      handle: offsetFetch,
    },
    { key: ApiKey.JoinGroup, name: "JoinGroup", minVersion: 0, maxVersion: 5, handle: joinGroup },
    { key: ApiKey.Heartbeat, name: "Heartbeat", minVersion: 0, maxVersion: 3, handle: heartbeat },
    {
      key: ApiKey.LeaveGroup,
      name: "LeaveGroup",
      minVersion: 0,
      maxVersion: 3,
      handle: leaveGroup,
    },
    { key: ApiKey.SyncGroup, name: "SyncGroup", minVersion: 0, maxVersion: 3, handle: syncGroup },
    {
      key: ApiKey.SaslHandshake,
      name: "SaslHandshake",
      minVersion: 0,
      maxVersion: 1,
      handle: saslHandshake,
    },
    {
      key: ApiKey.ApiVersions,
      name: "ApiVersions",
      minVersion: 0,
      maxVersion: 3,
      flexibleFrom: 3,
      handle: apiVersions,
    },
    {
      key: ApiKey.InitProducerId,
      name: "InitProducerId",
      minVersion: 0,
      maxVersion: 1,
      handle: initProducerId,
    },
    {
      key: ApiKey.SaslAuthenticate,
      name: "SaslAuthenticate",
      minVersion: 0,
      maxVersion: 1,
      handle: saslAuthenticate,
    },
  ] satisfies Api[]).map((api) => [api.key, api]),
);

/** APIs a connection may use before it has authenticated, when SASL is on. */
export const PRE_AUTH_APIS: ReadonlySet<number> = new Set([
  ApiKey.ApiVersions,
  ApiKey.SaslHandshake,
  ApiKey.SaslAuthenticate,
]);
