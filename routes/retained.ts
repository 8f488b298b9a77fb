/**
 * `/api/v1/retained`: retained messages. List by topic filter (wildcards allowed, paged), get one
 * with its payload, delete one. Topics go in the path URL-encoded (`a/b` is `a%2Fb`).
 *
 * @module
 */

import { createRoute, z } from "@hono/zod-openapi";
import { type Broker, type Message, validateTopicFilter, validateTopicName } from "../src/mod.ts";
import {
  authErrors,
  byText,
  errors,
  fieldProblem,
  json,
  pageOf,
  pageQuery,
  paginate,
  problem,
  resourceApp,
} from "./_common.ts";
import {
  encodePayload,
  EncodingSchema,
  MessagePropertiesSchema,
  propertiesView,
} from "./_messages.ts";

const RetainedSchema = z.object({
  topic: z.string().openapi({ example: "sensors/1/temperature" }),
  qos: z.number().int(),
  payloadSize: z.number().int(),
  /** Client id of the publisher; empty for messages the broker made. */
  publisher: z.string(),
  properties: MessagePropertiesSchema.optional(),
}).openapi("RetainedMessage");

const RetainedDetailSchema = RetainedSchema.extend({
  payload: z.string(),
  encoding: EncodingSchema,
}).openapi("RetainedMessageDetail");

const TopicParam = z.object({
  topic: z.string().min(1).openapi({
    param: { name: "topic", in: "path" },
    description: "The topic, URL-encoded",
    example: "sensors%2F1%2Ftemperature",
  }),
});

const listRetained = createRoute({
  method: "get",
  path: "/",
  tags: ["retained"],
  summary: "List retained messages matching a filter",
  request: {
    query: z.object({
      ...pageQuery,
      filter: z.string().default("#").openapi({
        description: "Topic filter, wildcards allowed (`#` does not match `$SYS/...`)",
      }),
    }),
  },
  responses: {
    200: { description: "One page, ordered by topic", content: json(pageOf(RetainedSchema)) },
    400: errors[400],
    ...authErrors,
  },
});

const getRetained = createRoute({
  method: "get",
  path: "/{topic}",
  tags: ["retained"],
  summary: "A retained message with its payload",
  request: {
    params: TopicParam,
    query: z.object({
      encoding: EncodingSchema.optional().openapi({
        description: "Payload as utf8 text (when it is valid UTF-8, the default) or base64",
      }),
    }),
  },
  responses: {
    200: { description: "The message", content: json(RetainedDetailSchema) },
    400: errors[400],
    404: errors[404],
    ...authErrors,
  },
});

const deleteRetained = createRoute({
  method: "delete",
  path: "/{topic}",
  tags: ["retained"],
  summary: "Delete a retained message",
  request: { params: TopicParam },
  responses: {
    204: { description: "Deleted" },
    400: errors[400],
    404: errors[404],
    ...authErrors,
  },
});

function view(message: Message, now: number) {
  return {
    topic: message.topic,
    qos: message.qos,
    payloadSize: message.payload.length,
    publisher: message.origin,
    properties: propertiesView(message, now),
  };
}

/** The retained messages resource. */
export function retainedRoutes(broker: Broker) {
  const app = resourceApp();
  const store = broker.backbone.retained;
  app.openapi(listRetained, async (c) => {
    const { page, limit, filter } = c.req.valid("query");
    const invalid = validateTopicFilter(filter, broker.topicLimits);
    if (invalid) return fieldProblem(c, "filter", invalid.message);
    const now = broker.clock.now();
    const messages = (await store.match(filter))
      .sort(byText((message) => message.topic))
      .map((message) => view(message, now));
    return c.json(paginate(messages, page, limit), 200);
  });
  app.openapi(getRetained, async (c) => {
    const { topic } = c.req.valid("param");
    const invalid = validateTopicName(topic, broker.topicLimits);
    if (invalid) return fieldProblem(c, "topic", invalid.message);
    const message = await store.get(topic);
    if (!message) return problem(c, 404, `No retained message on "${topic}"`);
    const { encoding } = c.req.valid("query");
    return c.json({
      ...view(message, broker.clock.now()),
      ...encodePayload(message.payload, encoding),
    }, 200);
  });
  app.openapi(deleteRetained, async (c) => {
    const { topic } = c.req.valid("param");
    const invalid = validateTopicName(topic, broker.topicLimits);
    if (invalid) return fieldProblem(c, "topic", invalid.message);
    if (!(await store.delete(topic))) return problem(c, 404, `No retained message on "${topic}"`);
    return c.body(null, 204);
  });
  return app;
}
