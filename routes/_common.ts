/**
 * What every resource of the admin API shares: the context variables, error replies, paging,
 * and the OpenAPI pieces (error responses, JSON bodies) the route definitions repeat.
 *
 * @module
 */

import { OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { ZodError } from "zod";

/** Roles of API callers: `admin` may do everything, `viewer` only read. */
export type Role = "admin" | "viewer";

/** Who is calling, as the auth middleware established it. */
export interface Principal {
  /** The token's name, the user name of a login token, or `anonymous` on loopback. */
  name: string;
  role: Role;
}

/** Hono environment of every admin sub-app. */
export interface AdminEnv {
  Variables: { principal: Principal };
  /**
   * What the HTTP server knows of the connection (`app.fetch(request, { remoteAddress })`);
   * absent when the app is asked without a socket (`app.request()`).
   */
  Bindings: { remoteAddress?: string } | undefined;
}

/** The caller's IP address, or `unknown` when the app is asked without a socket. */
export function remoteAddress(c: Context<AdminEnv>): string {
  return c.env?.remoteAddress ?? "unknown";
}

/** One field-level problem of a request. */
export interface Issue {
  /** Dotted path of the field, e.g. `properties.userProperties.0`. */
  field: string;
  message: string;
}

/** The body of every error reply. */
export const ErrorSchema = z.object({
  status: z.number().int().openapi({ example: 404 }),
  message: z.string().openapi({ example: 'No connected client "sensor-1"' }),
  issues: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
}).openapi("Error");

/** The body of an error reply. */
export type ErrorBody = z.infer<typeof ErrorSchema>;

/** Replies with a JSON error: the status, a message, and field-level issues for a 400. */
export function problem<S extends ContentfulStatusCode>(
  c: Context,
  status: S,
  message: string,
  issues?: Issue[],
) {
  const body: ErrorBody = issues ? { status, message, issues } : { status, message };
  return c.json(body, status);
}

/** A 400 naming one field and what is wrong with it. */
export function fieldProblem(c: Context, field: string, message: string) {
  return problem(c, 400, `Invalid request: ${field}: ${message}`, [{ field, message }]);
}

/** Field-level issues of a failed zod validation, where `target` is query, param or json. */
export function issuesOf(error: ZodError): Issue[] {
  return error.issues.map((issue) => ({
    field: issue.path.map(String).join(".") || "(body)",
    message: issue.message,
  }));
}

/** Answers a failed request validation with 400, naming each field and what is wrong. */
export function validationHook(
  result: { success: true } | { success: false; error: ZodError },
  c: Context,
): Response | undefined {
  if (result.success) return undefined;
  const issues = issuesOf(result.error);
  const summary = issues.map((i) => `${i.field}: ${i.message}`).join("; ");
  return problem(c, 400, `Invalid request: ${summary}`, issues);
}

/** A sub-app with the shared validation hook. */
export function resourceApp(): OpenAPIHono<AdminEnv> {
  return new OpenAPIHono<AdminEnv>({ defaultHook: validationHook });
}

function integerParam(name: string, min: number, max: number, defaultValue: number) {
  const error = `expected an integer from ${min} to ${max}`;
  return z.coerce.number({ error }).int({ error }).min(min, { error }).max(max, { error })
    .default(defaultValue)
    .openapi({ param: { name, in: "query" }, example: defaultValue });
}

/** Most items one page may hold. */
export const MAX_PAGE_SIZE = 1000;

/** `?page=&limit=` of every list. */
export const pageQuery = {
  page: integerParam("page", 1, Number.MAX_SAFE_INTEGER, 1),
  limit: integerParam("limit", 1, MAX_PAGE_SIZE, 100),
};

/** The `meta` of a list reply. */
export const PageMetaSchema = z.object({
  page: z.number().int(),
  limit: z.number().int(),
  /** Items matching the filters, over all pages. */
  count: z.number().int(),
  hasNext: z.boolean(),
}).openapi("PageMeta");

/** A list reply: one page of items and the paging facts. */
export function pageOf<T extends z.ZodType>(item: T) {
  return z.object({ data: z.array(item), meta: PageMetaSchema });
}

/** A comparator ordering items by a text key (code unit order, like the backbone's lists). */
export function byText<T>(key: (item: T) => string): (a: T, b: T) => number {
  return (a, b) => {
    const x = key(a);
    const y = key(b);
    return x < y ? -1 : x > y ? 1 : 0;
  };
}

/** Cuts one page out of `items`. */
export function paginate<T>(
  items: readonly T[],
  page: number,
  limit: number,
): { data: T[]; meta: z.infer<typeof PageMetaSchema> } {
  const start = (page - 1) * limit;
  const data = items.slice(start, start + limit);
  return {
    data,
    meta: { page, limit, count: items.length, hasNext: start + limit < items.length },
  };
}

/** An `application/json` body or response content. */
export function json<T extends z.ZodType>(schema: T) {
  return { "application/json": { schema } };
}

const errorResponse = (description: string) => ({ description, content: json(ErrorSchema) });

/** Error responses every authenticated route may give. */
export const authErrors = {
  401: errorResponse("No token, or a token that is not valid"),
  403: errorResponse("The token's role may not do this (viewer writing)"),
} as const;

/** Named error responses for route definitions. */
export const errors = {
  400: errorResponse("The request is not valid: `issues` names each field"),
  404: errorResponse("No such resource"),
  409: errorResponse("Conflicts with the current state or configuration"),
  413: errorResponse("The request body is too large"),
  429: errorResponse("Too many failed logins: retry after the `Retry-After` seconds"),
  500: errorResponse("The change could not be made (the backbone's config store failed)"),
  503: errorResponse("Another node, which holds what was asked for, did not answer in time"),
} as const;

/** A JSON body, required. */
export function jsonBody<T extends z.ZodType>(schema: T) {
  return { required: true, content: json(schema) };
}

/** The MQTT QoS levels, with a message naming them. */
export const QosSchema = z.union([z.literal(0), z.literal(1), z.literal(2)], {
  error: "expected 0, 1 or 2",
}).openapi({ type: "integer", enum: [0, 1, 2] });

/** The same, from a query string. */
export const QosQuery = z.enum(["0", "1", "2"], { error: "expected 0, 1 or 2" })
  .transform(Number)
  .openapi({ param: { name: "qos", in: "query" } });
