/**
 * `/api/v1/bridges`: the Kafka bridge's mappings from MQTT topics to Kafka topics (list with the
 * bridge's state, get, create, replace, delete), each with its counts. The mappings live in the
 * backbone's config store, so a change made through any node applies on every node. smq's call
 * keeps working: `POST /api/v1/bridge/` with `{"topic": "event", "queue": "event"}` maps
 * `$queue/event` to the Kafka topic `event`.
 *
 * @module
 */

import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import {
  type KafkaBridge,
  type KafkaMapping,
  type KafkaMappingView,
  type MappingChange,
  type MappingStats,
  PAYLOAD_ENCODINGS,
  VALUE_FORMATS,
} from "../src/mod.ts";
import {
  authErrors,
  errors,
  json,
  jsonBody,
  pageOf,
  pageQuery,
  paginate,
  problem,
  resourceApp,
} from "./_common.ts";

const text = (what: string) => z.string({ error: `expected ${what}` });

const MappingFields = {
  filter: text("a topic filter").openapi({
    description:
      "MQTT topic filter, matched against the topic after `$queue/` (and, with `copy`, against ordinary topics)",
    example: "sensors/#",
  }),
  kafkaTopic: text("a Kafka topic name").openapi({ example: "sensors" }),
  key: text("a key template").optional().openapi({
    description:
      "Record key template: `{topic}` (default), `{clientId}`, `{username}`; empty for no key",
  }),
  format: z.enum(VALUE_FORMATS, { error: 'expected "raw" or "json"' }).optional().openapi({
    description: "`raw` payload bytes (default) or a `json` envelope",
  }),
  payloadEncoding: z.enum(PAYLOAD_ENCODINGS, { error: 'expected "base64" or "utf8"' }).optional()
    .openapi({ description: "Payload in the json envelope: `base64` (default) or `utf8`" }),
  headers: z.boolean({ error: "expected true or false" }).optional().openapi({
    description: "MQTT 5 user properties as Kafka headers (default true)",
  }),
  copy: z.boolean({ error: "expected true or false" }).optional().openapi({
    description:
      "Also take ordinary publishes matching `filter` (they still reach MQTT subscribers); default false",
  }),
};

const NameSchema = text("a mapping name").openapi({ example: "sensors" });

const MappingInputSchema = z.object({ name: NameSchema, ...MappingFields }).strict()
  .openapi("BridgeMappingInput");

const MappingReplaceSchema = z.object(MappingFields).strict().openapi("BridgeMappingReplace");

const StatsSchema = z.object({
  produced: z.number().int(),
  failed: z.number().int().openapi({ description: "Records Kafka refused for good (dropped)" }),
  dropped: z.number().int().openapi({ description: "QoS 0 messages dropped: buffer full" }),
  refused: z.number().int().openapi({
    description: "QoS 1/2 messages refused with 0x97: buffer full",
  }),
  bufferedMessages: z.number().int(),
  bufferedBytes: z.number().int(),
  oldestBufferedAgeSeconds: z.number(),
}).openapi("BridgeMappingStats");

const MappingSchema = z.object({
  name: z.string(),
  filter: z.string(),
  kafkaTopic: z.string(),
  key: z.string(),
  format: z.enum(VALUE_FORMATS),
  payloadEncoding: z.enum(PAYLOAD_ENCODINGS),
  headers: z.boolean(),
  copy: z.boolean(),
  source: z.enum(["config", "api"]).openapi({
    description: "`config`: from bridge.kafka.mappings in the config file (read-only here)",
  }),
  stats: StatsSchema,
}).openapi("BridgeMapping");

const KafkaStatusSchema = z.object({
  state: z.enum(["connecting", "connected", "disconnected", "retrying", "stopped"]),
  since: z.string().openapi({ description: "When the state last changed (ISO 8601)" }),
  error: z.string().nullable(),
  brokers: z.array(z.string()),
  durable: z.boolean().openapi({
    description: "Whether messages waiting for Kafka survive a crash of this node",
  }),
  buffered: z.number().int().openapi({ description: "Messages waiting for Kafka" }),
}).openapi("KafkaBridgeStatus");

const ListSchema = pageOf(MappingSchema).extend({ kafka: KafkaStatusSchema })
  .openapi("BridgeMappingPage");

const NameParam = z.object({
  name: z.string().min(1).openapi({ param: { name: "name", in: "path" }, example: "sensors" }),
});

const listMappings = createRoute({
  method: "get",
  path: "/",
  tags: ["bridges"],
  summary: "The Kafka bridge's state and its mappings, with their counts",
  request: { query: z.object(pageQuery) },
  responses: {
    200: {
      description: "One page of mappings, in the order they were added",
      content: json(ListSchema),
    },
    400: errors[400],
    409: errors[409],
    ...authErrors,
  },
});

const getMapping = createRoute({
  method: "get",
  path: "/{name}",
  tags: ["bridges"],
  summary: "One mapping with its counts",
  request: { params: NameParam },
  responses: {
    200: { description: "The mapping", content: json(MappingSchema) },
    404: errors[404],
    409: errors[409],
    ...authErrors,
  },
});

const createMapping = createRoute({
  method: "post",
  path: "/",
  tags: ["bridges"],
  summary: "Add a mapping (applies on every node)",
  request: { body: jsonBody(MappingInputSchema) },
  responses: {
    201: { description: "Added", content: json(MappingSchema) },
    400: errors[400],
    409: errors[409],
    ...authErrors,
  },
});

const replaceMapping = createRoute({
  method: "put",
  path: "/{name}",
  tags: ["bridges"],
  summary: "Replace a mapping (409 for one of the config file)",
  request: { params: NameParam, body: jsonBody(MappingReplaceSchema) },
  responses: {
    200: { description: "Replaced", content: json(MappingSchema) },
    400: errors[400],
    404: errors[404],
    409: errors[409],
    ...authErrors,
  },
});

const deleteMapping = createRoute({
  method: "delete",
  path: "/{name}",
  tags: ["bridges"],
  summary:
    "Remove a mapping (records already taken still go to Kafka; 409 for one of the config file)",
  request: { params: NameParam },
  responses: {
    204: { description: "Removed" },
    404: errors[404],
    409: errors[409],
    ...authErrors,
  },
});

const SmqSchema = z.object({
  topic: text("an MQTT topic filter").openapi({
    description: "Messages published to `$queue/{topic}` go to the Kafka topic `queue`",
    example: "event",
  }),
  queue: text("a Kafka topic name").openapi({ example: "event" }),
}).openapi("SmqBridge");

/** smq's route: its clients call it with the trailing slash; without one works too. */
const smqRoute = (path: "/bridge/" | "/bridge") =>
  createRoute({
    method: "post",
    path,
    tags: ["bridges"],
    summary: "smq's form: map `$queue/{topic}` to the Kafka topic `queue`",
    request: { body: jsonBody(SmqSchema) },
    responses: {
      200: { description: "The same mapping existed", content: json(MappingSchema) },
      201: { description: "Added", content: json(MappingSchema) },
      400: errors[400],
      409: errors[409],
      ...authErrors,
    },
  });

const NOT_CONFIGURED = "The Kafka bridge is not configured on this node: set bridge.kafka.brokers";

function view(mapping: KafkaMappingView, all: Map<string, MappingStats>) {
  const { oldestBufferedAge, ...stats } = all.get(mapping.name) ?? NO_STATS;
  return { ...mapping, stats: { ...stats, oldestBufferedAgeSeconds: oldestBufferedAge } };
}

/** A mapping gone between the change and the answer (another node removed it) counts nothing. */
const NO_STATS: MappingStats = {
  produced: 0,
  failed: 0,
  dropped: 0,
  refused: 0,
  bufferedMessages: 0,
  bufferedBytes: 0,
  oldestBufferedAge: 0,
};

/** One mapping as the API shows it. */
function viewOf(bridge: KafkaBridge, mapping: KafkaMappingView) {
  return view(mapping, bridge.stats());
}

/** A mapping the API just wrote, as the bridge applied it. */
function written(bridge: KafkaBridge, mapping: KafkaMapping) {
  return viewOf(bridge, bridge.mapping(mapping.name) ?? { ...mapping, source: "api" });
}

/** A refused change as its HTTP answer: 400 naming each field, or the status of the conflict. */
function refusal(c: Context, change: Extract<MappingChange, { ok: false }>) {
  switch (change.status) {
    case 400:
      return problem(c, 400, change.message, change.issues);
    case 404:
      return problem(c, 404, change.message);
    case 409:
      return problem(c, 409, change.message);
  }
}

/** The name smq's form gives a mapping: its topic and queue, with what a name cannot hold as `_`. */
function smqName(topic: string, queue: string): string {
  return `${topic}-${queue}`.replace(/[^A-Za-z0-9._-]/g, "_").slice(0, 64);
}

/** The `/api/v1/bridges` resource. */
export function bridgesRoutes(bridge: KafkaBridge | undefined) {
  const app = resourceApp();
  app.openapi(listMappings, (c) => {
    if (!bridge) return problem(c, 409, NOT_CONFIGURED);
    const { page, limit } = c.req.valid("query");
    const status = bridge.status();
    const stats = bridge.stats();
    const mappings = bridge.mappings().map((mapping) => view(mapping, stats));
    return c.json({
      ...paginate(mappings, page, limit),
      kafka: {
        state: status.state,
        since: new Date(status.since).toISOString(),
        error: status.error ?? null,
        brokers: status.brokers,
        durable: status.durable,
        buffered: status.buffered,
      },
    }, 200);
  });
  app.openapi(getMapping, (c) => {
    if (!bridge) return problem(c, 409, NOT_CONFIGURED);
    const { name } = c.req.valid("param");
    const mapping = bridge.mapping(name);
    if (!mapping) return problem(c, 404, `No mapping named "${name}"`);
    return c.json(viewOf(bridge, mapping), 200);
  });
  app.openapi(createMapping, async (c) => {
    if (!bridge) return problem(c, 409, NOT_CONFIGURED);
    const change = await bridge.create(c.req.valid("json"));
    if (!change.ok) {
      return change.status === 400
        ? problem(c, 400, change.message, change.issues)
        : problem(c, 409, change.message);
    }
    return c.json(written(bridge, change.mapping), 201);
  });
  app.openapi(replaceMapping, async (c) => {
    if (!bridge) return problem(c, 409, NOT_CONFIGURED);
    const { name } = c.req.valid("param");
    const change = await bridge.update({ name, ...c.req.valid("json") });
    if (change.ok) return c.json(written(bridge, change.mapping), 200);
    return refusal(c, change);
  });
  app.openapi(deleteMapping, async (c) => {
    if (!bridge) return problem(c, 409, NOT_CONFIGURED);
    const { name } = c.req.valid("param");
    const change = await bridge.delete(name);
    if (change.ok) return c.body(null, 204);
    return change.status === 404
      ? problem(c, 404, change.message)
      : problem(c, 409, change.message);
  });
  return app;
}

/** smq's `/api/v1/bridge/`, mounted at `/api/v1`. */
export function smqBridgeRoutes(bridge: KafkaBridge | undefined) {
  const app = resourceApp();
  for (const path of ["/bridge/", "/bridge"] as const) {
    app.openapi(smqRoute(path), async (c) => {
      if (!bridge) return problem(c, 409, NOT_CONFIGURED);
      const { topic, queue } = c.req.valid("json");
      const existing = bridge.mappings().find((m) => m.filter === topic && m.kafkaTopic === queue);
      if (existing) return c.json(viewOf(bridge, existing), 200);
      const change = await bridge.create({
        name: smqName(topic, queue),
        filter: topic,
        kafkaTopic: queue,
      });
      if (change.ok) return c.json(written(bridge, change.mapping), 201);
      // Problems named by the fields of smq's form.
      const field = (name: string) =>
        name === "filter" ? "topic" : name === "kafkaTopic" ? "queue" : name;
      const issues = change.issues?.map((issue) => ({ ...issue, field: field(issue.field) }));
      const message = issues
        ? `Invalid request: ${issues.map((i) => `${i.field}: ${i.message}`).join("; ")}`
        : change.message;
      return change.status === 400 ? problem(c, 400, message, issues) : problem(c, 409, message);
    });
  }
  return app;
}
