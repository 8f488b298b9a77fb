/**
 * Application messages in API bodies: payloads as UTF-8 text or base64, and the MQTT 5 properties
 * that travel with a message (the same set the broker forwards to subscribers).
 *
 * @module
 */

import { z } from "@hono/zod-openapi";
import type { Message, Properties } from "../src/mod.ts";

/** How a payload is written in JSON. */
export const EncodingSchema = z.enum(["utf8", "base64"], { error: 'expected "utf8" or "base64"' });
export type Encoding = z.infer<typeof EncodingSchema>;

const utf8 = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

/** Text as given, or base64 decoded; undefined when `text` is not base64. */
export function decodePayload(text: string, encoding: Encoding): Uint8Array | undefined {
  if (encoding === "utf8") return encoder.encode(text);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 === 1) return undefined;
  try {
    return Uint8Array.fromBase64(text);
  } catch {
    return undefined;
  }
}

/** A payload as UTF-8 text when it is valid UTF-8 (unless base64 is asked for), else base64. */
export function encodePayload(
  payload: Uint8Array,
  wanted: Encoding | undefined,
): { payload: string; encoding: Encoding } {
  if (wanted !== "base64") {
    try {
      return { payload: utf8.decode(payload), encoding: "utf8" };
    } catch {
      // Not UTF-8: base64 below.
    }
  }
  return { payload: payload.toBase64(), encoding: "base64" };
}

const UserPropertySchema = z.tuple([z.string(), z.string()], {
  error: "expected a [name, value] pair of strings",
}).openapi({ example: ["origin", "admin-api"] });

/** MQTT 5 properties of a message, as the API reads and writes them. */
export const MessagePropertiesSchema = z.object({
  payloadFormatIndicator: z.union([z.literal(0), z.literal(1)], { error: "expected 0 or 1" })
    .optional(),
  messageExpiryInterval: z.number({ error: "expected seconds from 0 to 4294967295" })
    .int({ error: "expected seconds from 0 to 4294967295" })
    .min(0, { error: "expected seconds from 0 to 4294967295" })
    .max(0xffff_ffff, { error: "expected seconds from 0 to 4294967295" })
    .optional(),
  contentType: z.string({ error: "expected a string" }).optional(),
  responseTopic: z.string({ error: "expected a topic name" }).min(1, {
    error: "expected a topic name",
  }).optional(),
  /** Base64. */
  correlationData: z.string({ error: "expected base64 text" }).optional()
    .openapi({ description: "Base64" }),
  userProperties: z.array(UserPropertySchema, { error: "expected a list of [name, value] pairs" })
    .optional(),
}).strict().openapi("MessageProperties");

export type MessagePropertiesInput = z.infer<typeof MessagePropertiesSchema>;

/** The properties of a stored message as the API shows them (expiry as seconds left). */
export function propertiesView(
  message: Message,
  now: number,
): MessagePropertiesInput | undefined {
  const p = message.properties;
  const left = message.expiresAt === 0
    ? undefined
    : Math.max(0, Math.ceil((message.expiresAt - now) / 1000));
  if (!p && left === undefined) return undefined;
  return {
    payloadFormatIndicator: p?.payloadFormatIndicator as 0 | 1 | undefined,
    messageExpiryInterval: left,
    contentType: p?.contentType,
    responseTopic: p?.responseTopic,
    correlationData: p?.correlationData?.toBase64(),
    userProperties: p?.userProperties,
  };
}

/** Properties to forward, without the expiry (kept in `Message.expiresAt`). */
export function forwardedProperties(
  input: MessagePropertiesInput | undefined,
  correlationData: Uint8Array | undefined,
): Properties | undefined {
  if (!input) return undefined;
  const properties: Properties = {};
  if (input.payloadFormatIndicator !== undefined) {
    properties.payloadFormatIndicator = input.payloadFormatIndicator;
  }
  if (input.contentType !== undefined) properties.contentType = input.contentType;
  if (input.responseTopic !== undefined) properties.responseTopic = input.responseTopic;
  if (correlationData !== undefined) properties.correlationData = correlationData;
  if (input.userProperties !== undefined) properties.userProperties = input.userProperties;
  return Object.keys(properties).length === 0 ? undefined : properties;
}
