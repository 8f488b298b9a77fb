/**
 * `POST /api/v1/publish`: publishes a message as the broker itself (no client, so No Local never
 * applies), with the payload as UTF-8 text or base64, any QoS the broker allows, RETAIN, and MQTT 5
 * properties. Subscribers get it exactly as if a client had published it.
 *
 * @module
 */

import { createRoute, z } from "@hono/zod-openapi";
import {
  type Broker,
  encodePublishHeader,
  type Message,
  type Properties,
  ReasonCode,
  validateTopicName,
} from "../src/mod.ts";
import {
  authErrors,
  errors,
  ErrorSchema,
  type Issue,
  json,
  jsonBody,
  problem,
  QosSchema,
  resourceApp,
} from "./_common.ts";
import {
  decodePayload,
  EncodingSchema,
  forwardedProperties,
  MessagePropertiesSchema,
} from "./_messages.ts";

const PublishBody = z.object({
  topic: z.string({ error: "expected a topic name" }).openapi({ example: "alerts/fire" }),
  payload: z.string({ error: "expected a string" }).default("")
    .openapi({ description: "Text, or base64 when encoding is base64" }),
  encoding: EncodingSchema.default("utf8"),
  qos: QosSchema.default(0),
  retain: z.boolean({ error: "expected true or false" }).default(false),
  properties: MessagePropertiesSchema.optional(),
}).strict().openapi("PublishRequest");

const PublishResult = z.object({
  /** MQTT 5 reason code a PUBACK would carry: 0 Success, 16 No matching subscribers. */
  reasonCode: z.number().int(),
  reason: z.string(),
}).openapi("PublishResult");

const publish = createRoute({
  method: "post",
  path: "/",
  tags: ["publish"],
  summary: "Publish a message",
  request: { body: jsonBody(PublishBody) },
  responses: {
    200: { description: "Accepted and routed", content: json(PublishResult) },
    400: errors[400],
    413: errors[413],
    507: {
      description: "Routed, but not retained: the retained store is full",
      content: json(ErrorSchema),
    },
    ...authErrors,
  },
});

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The publish resource. */
export function publishRoutes(broker: Broker) {
  const app = resourceApp();
  app.openapi(publish, async (c) => {
    const body = c.req.valid("json");
    const options = broker.options;
    const issues: Issue[] = [];
    const topicInvalid = validateTopicName(body.topic, broker.topicLimits);
    if (topicInvalid) issues.push({ field: "topic", message: topicInvalid.message });
    const payload = decodePayload(body.payload, body.encoding);
    if (!payload) issues.push({ field: "payload", message: "not valid base64" });
    if (body.qos > options.maxQos) {
      issues.push({
        field: "qos",
        message: `QoS ${body.qos} exceeds mqtt.maxQos ${options.maxQos}`,
      });
    }
    if (body.retain && !options.retainAvailable) {
      issues.push({ field: "retain", message: "retained messages are off (mqtt.retainAvailable)" });
    }
    const properties = body.properties;
    let correlationData: Uint8Array | undefined;
    if (properties?.correlationData !== undefined) {
      correlationData = decodePayload(properties.correlationData, "base64");
      if (!correlationData) {
        issues.push({ field: "properties.correlationData", message: "not valid base64" });
      }
    }
    if (properties?.responseTopic !== undefined) {
      const invalid = validateTopicName(properties.responseTopic, broker.topicLimits);
      if (invalid) issues.push({ field: "properties.responseTopic", message: invalid.message });
    }
    if (properties?.payloadFormatIndicator === 1 && payload && !isUtf8(payload)) {
      // [MQTT-3.3.2-4]: a payload announced as UTF-8 must be UTF-8.
      issues.push({ field: "payload", message: "payloadFormatIndicator 1 needs a UTF-8 payload" });
    }
    const forwarded = forwardedProperties(properties, correlationData);
    if (issues.length === 0) {
      // The limit a client's PUBLISH must keep to holds for the API's too.
      const size = publishPacketSize(body.topic, payload!, body.qos, {
        ...forwarded,
        messageExpiryInterval: properties?.messageExpiryInterval,
      });
      if (size > options.maxPacketSize) {
        issues.push({
          field: "payload",
          message:
            `the message makes a ${size}-byte PUBLISH packet, over mqtt.maxPacketSize (${options.maxPacketSize} bytes)`,
        });
      }
    }
    if (issues.length > 0) {
      const summary = issues.map((i) => `${i.field}: ${i.message}`).join("; ");
      return problem(c, 400, `Invalid request: ${summary}`, issues);
    }
    const expiry = properties?.messageExpiryInterval;
    const message: Message = {
      topic: body.topic,
      payload: payload!,
      qos: body.qos,
      retain: body.retain,
      properties: forwarded,
      expiresAt: expiry === undefined || expiry === 0 ? 0 : broker.clock.now() + expiry * 1000,
      origin: "",
    };
    const reasonCode = await broker.publish(message);
    if (reasonCode === ReasonCode.QuotaExceeded) {
      return problem(c, 507, "The message was routed but not retained: the retained store is full");
    }
    const reason = reasonCode === ReasonCode.NoMatchingSubscribers
      ? "No matching subscribers"
      : "Success";
    return c.json({ reasonCode, reason }, 200);
  });
  return app;
}

/**
 * Bytes of the PUBLISH packet an MQTT 5 client would send for this message with these properties,
 * as `mqtt.maxPacketSize` counts them; Infinity beyond the largest packet MQTT can carry.
 */
function publishPacketSize(
  topic: string,
  payload: Uint8Array,
  qos: 0 | 1 | 2,
  properties: Properties,
): number {
  try {
    const header = encodePublishHeader({
      type: 3,
      dup: false,
      qos,
      retain: false,
      topic,
      packetId: qos === 0 ? 0 : 1,
      properties,
      payload,
    }, 5);
    return header.length + payload.length;
  } catch (error) {
    if (error instanceof RangeError) return Infinity;
    throw error;
  }
}

function isUtf8(bytes: Uint8Array): boolean {
  try {
    utf8.decode(bytes);
    return true;
  } catch {
    return false;
  }
}
