/**
 * The configuration schema: one strict zod schema with a default for every key, so an empty file (or
 * none) is a working broker. Durations are normalized to milliseconds and sizes to bytes.
 *
 * Every key carries metadata (`description`, `typeLabel`, optional `defaultLabel`) that
 * `describeConfig()` in `./reference.ts` turns into the config reference of docs/configuration.md.
 * Error messages are written here, per key, as `expected ...`; the loader appends `, got <value>`.
 *
 * @module
 */

import { hostname } from "node:os";
import process from "node:process";
import { z } from "zod";
import { isAddressOrRange } from "../util/address_match.ts";
import { LOG_FORMATS, LOG_LEVELS } from "../util/logger.ts";
import { formatDuration, formatSize, parseDuration, parseSize } from "./units.ts";

/** Documentation attached to every key of the schema, read by `describeConfig()`. */
export interface FieldMeta {
  /** What the key does, one or two sentences. */
  description: string;
  /** The accepted values in words, e.g. `integer 0..65535`, `duration >= 1ms`, `"text" | "json"`. */
  typeLabel: string;
  /** The default when it is computed at load time rather than a fixed value. */
  defaultLabel?: string;
}

const EXPECTED_MAPPING = "expected a mapping";
const MAX_UINT32 = 0xFFFF_FFFF;
/** The largest MQTT packet: a 268435455-byte remaining length after a 5-byte fixed header. */
const MAX_MQTT_PACKET_SIZE = 268_435_460;

function quoteList(values: readonly (string | number)[]): string {
  const quoted = values.map((v) => JSON.stringify(v));
  return quoted.length === 1 ? quoted[0] : `${quoted.slice(0, -1).join(", ")} or ${quoted.at(-1)}`;
}

function rangeText(min: number, max: number, format: (n: number) => string): string {
  if (max === Number.MAX_SAFE_INTEGER) return ` >= ${format(min)}`;
  return ` ${format(min)}..${format(max)}`;
}

function section<T extends z.core.$ZodLooseShape>(shape: T, description: string) {
  // Every key of a section has a default, so `{}` is valid input; the generic cannot see that.
  const empty = {} as z.core.$InferObjectInput<T, Record<never, never>>;
  return z.strictObject(shape, { error: EXPECTED_MAPPING }).prefault(empty).meta({ description });
}

function boolean(defaultValue: boolean, description: string) {
  return z.boolean({ error: "expected true or false" })
    .prefault(defaultValue)
    .meta({ description, typeLabel: "boolean" } satisfies FieldMeta);
}

function integer(
  defaultValue: number,
  description: string,
  { min, max = Number.MAX_SAFE_INTEGER }: { min: number; max?: number },
) {
  const error = max === Number.MAX_SAFE_INTEGER
    ? `expected an integer of at least ${min}`
    : `expected an integer from ${min} to ${max}`;
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error })
    .prefault(defaultValue)
    .meta({ description, typeLabel: `integer${rangeText(min, max, String)}` } satisfies FieldMeta);
}

function oneOf<const T extends readonly [string, ...string[]]>(
  values: T,
  defaultValue: T[number],
  description: string,
) {
  return z.enum(values, { error: `expected ${quoteList(values)}` })
    .prefault(defaultValue)
    .meta(
      {
        description,
        typeLabel: values.map((v) => JSON.stringify(v)).join(" | "),
      } satisfies FieldMeta,
    );
}

function listenHost() {
  const error = "expected a host name or IP address";
  return z.string({ error }).min(1, { error }).prefault("0.0.0.0")
    .meta(
      {
        description: "Address to listen on (`0.0.0.0` for all IPv4 interfaces, `::` for all).",
        typeLabel: "string",
      } satisfies FieldMeta,
    );
}

/** A string with a default, the empty string allowed. */
function textOrEmpty(defaultValue: string, description: string) {
  return z.string({ error: "expected a string" }).prefault(defaultValue)
    .meta({ description, typeLabel: "string" } satisfies FieldMeta);
}

/** A path to a PEM file; optional, since only an enabled listener needs it. */
function pemPath(description: string) {
  const error = "expected a file path";
  return z.string({ error }).min(1, { error }).optional()
    .meta({ description, typeLabel: "path" } satisfies FieldMeta);
}

function duration(
  defaultValue: string,
  description: string,
  { min, max = Number.MAX_SAFE_INTEGER }: { min: number; max?: number },
) {
  const format =
    'expected a duration such as "500ms", "10s", "5m", "2h" or "1d", or a number of seconds';
  const range = max === Number.MAX_SAFE_INTEGER
    ? `expected a duration of at least ${formatDuration(min)}`
    : `expected a duration from ${formatDuration(min)} to ${formatDuration(max)}`;
  return z.union([z.number(), z.string()], { error: format })
    .transform((value, ctx) => {
      const ms = parseDuration(value);
      if (ms === undefined || ms < min || ms > max) {
        ctx.issues.push({
          code: "custom",
          message: ms === undefined ? format : range,
          input: value,
        });
        return z.NEVER;
      }
      return ms;
    })
    .prefault(defaultValue)
    .meta(
      {
        description,
        typeLabel: `duration${rangeText(min, max, formatDuration)}`,
      } satisfies FieldMeta,
    );
}

function size(
  defaultValue: string,
  description: string,
  { min, max = Number.MAX_SAFE_INTEGER }: { min: number; max?: number },
) {
  const format = 'expected a size such as "64KiB", "1MiB", "1GiB" or "16kb", or a number of bytes';
  const range = max === Number.MAX_SAFE_INTEGER
    ? `expected a size of at least ${min} bytes`
    : `expected a size from ${min} to ${max} bytes`;
  return z.union([z.number(), z.string()], { error: format })
    .transform((value, ctx) => {
      const bytes = parseSize(value);
      if (bytes === undefined || bytes < min || bytes > max) {
        ctx.issues.push({
          code: "custom",
          message: bytes === undefined ? format : range,
          input: value,
        });
        return z.NEVER;
      }
      return bytes;
    })
    .prefault(defaultValue)
    .meta({ description, typeLabel: `size${rangeText(min, max, formatSize)}` } satisfies FieldMeta);
}

/**
 * `<hostname>-<pid>`, with characters that cannot appear in a NATS subject token replaced by `-`;
 * `perch-<pid>` when the host name is not available (no `--allow-sys`).
 */
function defaultNodeId(): string {
  let host: string;
  try {
    host = hostname();
  } catch {
    host = "perch";
  }
  return `${host}-${process.pid}`.replace(/[^A-Za-z0-9_-]/g, "-").slice(0, 128);
}

const NODE_ID_ERROR = 'expected 1 to 128 letters, digits, "-" or "_"';

/**
 * A list of IP addresses and CIDR ranges; a comma-separated string is accepted too, so the list
 * can come from an environment variable.
 */
function addressList(description: string) {
  const error = 'expected a list of IP addresses or CIDR ranges such as "10.0.0.0/8"';
  return z.preprocess(
    (value) =>
      typeof value === "string"
        ? value.split(",").map((entry) => entry.trim()).filter((entry) => entry !== "")
        : value,
    z.array(
      z.string({ error }).refine(isAddressOrRange, {
        error: (issue) => `not an IP address or CIDR range: ${JSON.stringify(issue.input)}`,
      }),
      { error },
    ),
  ).prefault([]).meta({ description, typeLabel: "list of addresses/CIDRs" } satisfies FieldMeta);
}

/**
 * Browser origins allowed to open a WebSocket: `*` for any, else `scheme://host[:port]` entries
 * (compared case-insensitively, as the browser's `Origin` header writes them).
 */
function originList(description: string) {
  const error = 'expected a list of origins such as "https://app.example.com", or "*"';
  return z.preprocess(
    (value) =>
      typeof value === "string"
        ? value.split(",").map((entry) => entry.trim()).filter((entry) => entry !== "")
        : value,
    z.array(
      z.string({ error }).refine((entry) => entry === "*" || isOrigin(entry), {
        error: (issue) =>
          `not an origin (scheme://host[:port], no path) or "*": ${JSON.stringify(issue.input)}`,
      }).transform((entry) => entry === "*" ? entry : new URL(entry).origin),
      { error },
    ),
  ).prefault(["*"]).meta({ description, typeLabel: "list of origins" } satisfies FieldMeta);
}

/** True for `scheme://host[:port]` with nothing after it (a trailing `/` aside). */
function isOrigin(text: string): boolean {
  try {
    const url = new URL(text);
    return url.origin !== "null" && url.pathname === "/" && url.username === "" &&
      url.password === "" && !/[?#]/.test(text);
  } catch {
    return false;
  }
}

function urlPath(defaultValue: string, description: string) {
  const error = 'expected a URL path starting with "/"';
  return z.string({ error }).regex(/^\/[^\s?#]*$/, { error }).prefault(defaultValue)
    .meta({ description, typeLabel: "path" } satisfies FieldMeta);
}

const proxyProtocol = section({
  enabled: boolean(
    false,
    "Expect a PROXY protocol header (v1 or v2) before MQTT on every connection from `trustedSources`.",
  ),
  trustedSources: addressList(
    "Load balancer addresses that send the header; empty means every source must send one. Connections from other sources are read as plain MQTT.",
  ),
  timeout: duration("5s", "Time allowed to receive the whole PROXY header.", { min: 1 }),
}, "PROXY protocol from a TCP load balancer.");

const tcpListener = section({
  enabled: boolean(true, "Accept MQTT over plain TCP."),
  host: listenHost(),
  port: integer(1883, "TCP port; 0 picks any free port.", { min: 0, max: 65535 }),
  nativeHandle: boolean(
    true,
    "On Deno, read and write connections through the runtime's native stream handle (no pending read per idle connection: ~2.4 KiB less each) when the host is an IP address and `proxyProtocol` is off; `false` reads through Deno's socket objects (`listen` of the Deno namespace). Out of file descriptors, the runtime's listening handle stops accepting (Deno 2.9, without reporting it); the listener checks itself every 5 s while it accepts nothing and listens again on a new handle once descriptors are free (connections queued in the old one are refused), where Deno's socket objects log each failed accept and accept again at once. Bun ignores it.",
  ),
  proxyProtocol,
}, "The MQTT over TCP listener.");

/** Keys shared by the `ws` and `wss` listeners. */
function webSocketKeys(port: number) {
  return {
    host: listenHost(),
    port: integer(port, "Port; 0 picks any free port.", { min: 0, max: 65535 }),
    path: urlPath("/mqtt", "URL path MQTT clients connect to."),
    trustedProxies: addressList(
      "Reverse proxies whose `proxyHeader` is believed for the client address.",
    ),
    allowedOrigins: originList(
      "Browser origins (`Origin` header) allowed to connect, e.g. `https://app.example.com`; `*` allows any. Requests without `Origin` (non-browser clients) are always accepted; others get 403.",
    ),
    proxyHeader: z.string({ error: "expected a header name" })
      .regex(/^[A-Za-z0-9-]+$/, { error: "expected a header name" })
      .transform((name) => name.toLowerCase())
      .prefault("x-forwarded-for")
      .meta(
        {
          description:
            "Header a trusted proxy puts the client address in: a list with the nearest hop last (`x-forwarded-for`) or one address (`x-real-ip`).",
          typeLabel: "string",
        } satisfies FieldMeta,
      ),
  };
}

const wsListener = section({
  enabled: boolean(false, "Accept MQTT over WebSocket (`ws://`)."),
  ...webSocketKeys(8083),
}, "The MQTT over WebSocket listener.");

const wssListener = z.strictObject({
  enabled: boolean(false, "Accept MQTT over secure WebSocket (`wss://`); needs `cert` and `key`."),
  ...webSocketKeys(8084),
  cert: pemPath("Path to the PEM certificate chain presented to clients."),
  key: pemPath("Path to the PEM private key of `cert`."),
}, { error: EXPECTED_MAPPING })
  .superRefine((wss, ctx) => {
    for (const key of ["cert", "key"] as const) {
      if (wss.enabled && wss[key] === undefined) {
        ctx.addIssue({
          code: "custom",
          path: [key],
          message: "required when listeners.wss.enabled is true",
        });
      }
    }
  })
  .prefault({})
  .meta({ description: "The MQTT over secure WebSocket listener." });

const tlsListener = z.strictObject({
  enabled: boolean(false, "Accept MQTT over TLS; needs `cert` and `key`."),
  host: listenHost(),
  port: integer(8883, "TLS port; 0 picks any free port.", { min: 0, max: 65535 }),
  cert: pemPath("Path to the PEM certificate chain presented to clients."),
  key: pemPath("Path to the PEM private key of `cert`."),
  ca: pemPath("Path to PEM CA certificates that client certificates must chain to."),
  requestClientCert: boolean(false, "Ask clients for a certificate (mutual TLS); needs `ca`."),
}, { error: EXPECTED_MAPPING })
  .superRefine((tls, ctx) => {
    for (const key of ["cert", "key"] as const) {
      if (tls.enabled && tls[key] === undefined) {
        ctx.addIssue({
          code: "custom",
          path: [key],
          message: "required when listeners.tls.enabled is true",
        });
      }
    }
    if (tls.requestClientCert && tls.ca === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["ca"],
        message: "required when listeners.tls.requestClientCert is true",
      });
    }
  })
  .prefault({})
  .meta({ description: "The MQTT over TLS listener." });

const mqtt = section({
  maxPacketSize: size(
    "1MiB",
    "Largest packet accepted from clients, announced to MQTT 5 clients as Maximum Packet Size.",
    { min: 2, max: MAX_MQTT_PACKET_SIZE },
  ),
  connectTimeout: duration(
    "10s",
    "Time allowed from accepting a connection to a complete CONNECT packet (also bounds a half-sent packet).",
    { min: 1 },
  ),
  // [MQTT-3.1.3-5]: the server must accept client ids of 1 to 23 characters.
  maxClientIdLength: integer(256, "Longest client id accepted, in characters.", {
    min: 23,
    max: 65535,
  }),
  allowEmptyClientId: boolean(
    true,
    "Assign an id to a client that sends an empty one (MQTT 3.1.1 clients must then ask for a clean session).",
  ),
  maxKeepAlive: integer(
    65535,
    "Longest keep alive, in seconds; MQTT 5 clients asking for more get this as Server Keep Alive.",
    { min: 1, max: 65535 },
  ),
  // [MQTT-3.1.2-24]: disconnect after 1.5 keep alive periods without a packet.
  keepAliveMultiplier: z.number({ error: "expected a number from 1 to 10" })
    .min(1, { error: "expected a number from 1 to 10" })
    .max(10, { error: "expected a number from 1 to 10" })
    .prefault(1.5)
    .meta(
      {
        description:
          "A client is disconnected after this many keep alive periods without a packet.",
        typeLabel: "number 1..10",
      } satisfies FieldMeta,
    ),
  receiveMaximum: integer(
    1024,
    "Inbound QoS 1/2 window announced to MQTT 5 clients as Receive Maximum.",
    { min: 1, max: 65535 },
  ),
  maxInflight: integer(
    32,
    "Outbound QoS 1/2 messages awaiting acknowledgement per client (capped by the client's Receive Maximum).",
    { min: 1, max: 65535 },
  ),
  maxQueuedMessages: integer(
    1000,
    "Messages queued per session while the client is offline or its window is full.",
    { min: 0 },
  ),
  maxQueuedBytes: size("16MiB", "Bytes queued per session while offline or beyond the window.", {
    min: 0,
  }),
  maxQos: z.literal([0, 1, 2], { error: "expected 0, 1 or 2" })
    .prefault(2)
    .meta(
      {
        description: "Highest QoS granted and accepted.",
        typeLabel: "0 | 1 | 2",
      } satisfies FieldMeta,
    ),
  retainAvailable: boolean(true, "Support retained messages."),
  wildcardSubscriptionAvailable: boolean(true, "Support `+` and `#` in subscription filters."),
  sharedSubscriptionAvailable: boolean(true, "Support `$share/{group}/{filter}` subscriptions."),
  subscriptionIdentifierAvailable: boolean(true, "Support MQTT 5 Subscription Identifiers."),
  topicAliasMaximum: integer(
    64,
    "Inbound topic aliases accepted per MQTT 5 connection (0 disables them).",
    { min: 0, max: 65535 },
  ),
  outboundTopicAliases: oneOf(
    ["off", "lru"],
    "lru",
    "Server-to-client topic aliases, when the client allows them: `off`, or `lru` to alias the most recently used topics.",
  ),
  maxTopicLength: integer(65535, "Longest topic name or filter, in bytes.", { min: 1, max: 65535 }),
  maxTopicLevels: integer(128, "Most `/`-separated levels in a topic name or filter.", {
    min: 1,
    max: 65535,
  }),
  maxSubscriptionsPerClient: integer(1000, "Most subscriptions one session may hold.", { min: 1 }),
  maxSessionExpiryInterval: integer(
    MAX_UINT32,
    "Longest session expiry interval, in seconds; longer requests are capped (4294967295 means never).",
    { min: 0, max: MAX_UINT32 },
  ),
  writeBufferLimit: size(
    "8MiB",
    "Bytes queued for writing on one connection before the slow-consumer policy applies.",
    { min: 1 },
  ),
  responseInformation: textOrEmpty(
    "response/%c",
    "Response Information for MQTT 5 clients that ask for it (a topic prefix for their response topics); `%c` becomes the client id; empty sends none.",
  ),
  rejectControlCharacters: boolean(
    true,
    "Refuse client ids, user names, topics and topic filters that contain control characters (U+0001-U+001F, U+007F-U+009F), as MQTT allows: CONNACK 0x85 for a client id, 0x81 (Malformed) otherwise; they would otherwise reach logs, the admin API and the dashboard.",
  ),
  validatePayloadFormat: boolean(
    false,
    "Check that payloads marked as UTF-8 (Payload Format Indicator 1) are valid UTF-8; invalid ones get reason 0x99.",
  ),
  serverReference: textOrEmpty(
    "",
    "Redirect: when set, MQTT 5 clients are refused with 0x9C (Use another server) and this Server Reference (e.g. `other-host:1883`); 3.1.1 clients get return code 3.",
  ),
  serverMoved: boolean(
    false,
    "With `serverReference`: refuse with 0x9D (Server moved, permanent) instead of 0x9C.",
  ),
  slowConsumerTimeout: duration(
    "10s",
    "A connected client whose QoS 1/2 window is full and that acknowledges nothing for this long is disconnected (MQTT 5: reason 0x97); its session keeps its queue, within `maxQueuedMessages` and `maxQueuedBytes`.",
    { min: 1 },
  ),
  queueFullPolicy: oneOf(
    ["wait", "refuse"],
    "wait",
    "When a subscriber's queue is full: `wait` makes the publish wait for room while that subscriber keeps acknowledging (its publishers go at its pace, and nothing acknowledged is dropped for it); `refuse` drops the message for that subscriber at once (MQTT 5 publishers get 0x97, 3.1.1 ones a plain acknowledgement), so no live subscriber ever slows a publisher. A subscriber that acknowledged nothing for `stuckSubscriberTimeout`, or is offline, refuses at once either way. Every backbone waits; with `wait` on one node (memory, SQLite) a queue also stops the broker reading its publishers while more than an eighth of its bound waits beyond its subscriber's window (see delivery guarantees).",
  ),
  stuckSubscriberTimeout: duration(
    "3s",
    "With `queueFullPolicy: wait`: a subscriber whose queue is full and that acknowledges nothing for this long (counted while the broker runs) is taken for stuck: what waits for it is refused for it (MQTT 5 publishers get 0x97, 3.1.1 ones a plain acknowledgement: lost for that subscriber) until it acknowledges again. Longer spares a subscriber only held up (off its CPU, a collection pause, a retransmission); shorter holds its publishers, and the subscribers they feed, up for less. Must be shorter than `backbone.timeout`; left out, 3 s or half of `backbone.timeout`, whichever is shorter.",
    { min: 100 },
  ),
  sessionSweepInterval: duration(
    "30s",
    "How often one node looks for offline sessions nobody watches (their node died or restarted) to publish their due wills and end the expired ones.",
    { min: 1000 },
  ),
}, "MQTT protocol limits and features.");

/** An optional text key (a URL, a claim name, a secret). */
function optionalText(description: string, typeLabel = "string") {
  const error = "expected a non-empty string";
  return z.string({ error }).min(1, { error }).optional()
    .meta({ description, typeLabel } satisfies FieldMeta);
}

function text(defaultValue: string, description: string) {
  const error = "expected a non-empty string";
  return z.string({ error }).min(1, { error }).prefault(defaultValue)
    .meta({ description, typeLabel: "string" } satisfies FieldMeta);
}

/** Authentication provider kinds, in the words of `auth.chain`. */
export const AUTH_PROVIDER_KINDS = ["certificate", "passwordFile", "jwt", "http"] as const;

const NAME_LIST_ERROR = "expected a list of strings";

/** One ACL rule as written in the config or a rules file. */
export const aclRuleSchema = z.strictObject({
  permission: z.enum(["allow", "deny"], { error: 'expected "allow" or "deny"' }),
  action: z.enum(["publish", "subscribe", "both"], {
    error: 'expected "publish", "subscribe" or "both"',
  }),
  topic: z.string({ error: "expected a topic filter" }).min(1, { error: "expected a topic filter" })
    .superRefine((topic, ctx) => {
      const sample = topic.replaceAll("%u", "u").replaceAll("%c", "c");
      const problem = topicFilterProblem(sample);
      if (problem) ctx.addIssue({ code: "custom", message: `expected a topic filter: ${problem}` });
    }),
  users: z.array(z.string({ error: NAME_LIST_ERROR }), { error: NAME_LIST_ERROR }).optional(),
  clients: z.array(z.string({ error: NAME_LIST_ERROR }), { error: NAME_LIST_ERROR }).optional(),
}, { error: "expected a rule: { permission, action, topic, users?, clients? }" });

/** The problem with a topic filter, in words (the subset of checks the config can make alone). */
function topicFilterProblem(filter: string): string | undefined {
  const levels = filter.split("/");
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i];
    if (level.includes("#") && (level !== "#" || i !== levels.length - 1)) {
      return '"#" must be a whole last level';
    }
    if (level.includes("+") && level !== "+") return '"+" must be a whole level';
  }
  if (filter.includes("\u0000")) return "U+0000 is not allowed";
  return undefined;
}

const aclRules = z.array(aclRuleSchema, { error: "expected a list of rules" })
  .prefault([])
  .meta(
    {
      description:
        "Ordered rules, first match wins: `{ permission: allow|deny, action: publish|subscribe|both, topic, users?, clients? }`; `%u`/`%c` in `topic` stand for the user name and client id.",
      typeLabel: "list of rules",
    } satisfies FieldMeta,
  );

const auth = z.strictObject({
  anonymous: oneOf(
    ["never", "loopback", "always"],
    "loopback",
    "Who may connect without credentials a provider accepted: `never`, `loopback` (clients on this machine only) or `always` (logged as a warning at start-up when a listener is reachable from other machines).",
  ),
  chain: z.array(
    z.enum(AUTH_PROVIDER_KINDS, { error: `expected ${quoteList(AUTH_PROVIDER_KINDS)}` }),
    { error: "expected a list of provider kinds" },
  )
    .prefault([])
    .meta(
      {
        description:
          "Authentication providers asked in this order; the first to allow or deny decides. Kinds: `certificate`, `passwordFile`, `jwt`, `http`.",
        typeLabel: "list of kinds",
      } satisfies FieldMeta,
    ),
  passwordFile: section({
    path: pemPath(
      "Password file of `username:verifier` lines (SCRAM-SHA-256 verifiers written by `deno task passwd`).",
    ),
    watch: boolean(true, "Reload the file when it changes (SIGHUP reloads too)."),
  }, "The `passwordFile` provider."),
  http: section({
    url: optionalText(
      "URL that receives a JSON POST per CONNECT: `{clientId, username, password, remoteAddress, protocolVersion}`.",
      "URL",
    ),
    timeout: duration("5s", "Time to wait for the service's answer.", { min: 1 }),
    cacheSize: integer(1000, "Most results cached (0 disables the cache).", { min: 0 }),
    cacheTtl: duration("1m", "How long a cached result is used.", { min: 0 }),
    failPolicy: oneOf(
      ["open", "closed"],
      "closed",
      "When the service fails (timeout, network error, unexpected status): `closed` refuses the client (0x88 Server unavailable), `open` lets it in.",
    ),
  }, "The `http` provider."),
  jwt: section({
    secret: optionalText("Shared secret for HS256 tokens.", "string (secret)"),
    publicKeyFile: pemPath("PEM public key for RS256 or ES256 tokens."),
    publicKeyAlgorithm: oneOf(["RS256", "ES256"], "RS256", "Algorithm of `publicKeyFile`."),
    jwksFile: pemPath('JWKS file (`{"keys": [...]}`) of RS256/ES256 public keys.'),
    issuer: optionalText("Required `iss` claim, when set."),
    audience: optionalText("Required `aud` claim, when set."),
    clockSkew: duration("30s", "Clock difference tolerated when checking `exp` and `nbf`.", {
      min: 0,
    }),
    requireExpiry: boolean(true, "Refuse tokens without an `exp` claim."),
    usernameClaim: text("sub", "Claim that becomes the client's user name."),
    aclClaim: text(
      "acl",
      "Claim with the client's own ACL (`{publish: [...], subscribe: [...]}` or a list of rules); when present it replaces the configured rules for that client, and what it does not allow is denied.",
    ),
  }, "The `jwt` provider (a token in the CONNECT password field)."),
  certificate: section({
    usernameFromCommonName: boolean(
      true,
      "Use the client certificate's subject CN as the user name.",
    ),
  }, "The `certificate` provider (mutual TLS; needs `listeners.tls.requestClientCert`)."),
  scram: section({
    enabled: boolean(
      false,
      "Offer MQTT 5 enhanced authentication with the `SCRAM-SHA-256` method (RFC 5802/7677), checking the users of `auth.passwordFile` (so `auth.chain` must list `passwordFile`).",
    ),
  }, "SCRAM-SHA-256 enhanced authentication (MQTT 5 AUTH packets)."),
}, { error: EXPECTED_MAPPING })
  .superRefine((value, ctx) => {
    const need = (kind: string, path: string[], what: string) =>
      ctx.addIssue({
        code: "custom",
        path,
        message: `required when auth.chain lists "${kind}"${what}`,
      });
    if (value.chain.includes("passwordFile") && value.passwordFile.path === undefined) {
      need("passwordFile", ["passwordFile", "path"], "");
    }
    if (value.scram.enabled && !value.chain.includes("passwordFile")) {
      // SCRAM checks the password file's users: one file serves plain passwords and SCRAM.
      ctx.addIssue({
        code: "custom",
        path: ["chain"],
        message: 'expected "passwordFile" in the list when auth.scram.enabled is true',
      });
    }
    if (value.chain.includes("http") && value.http.url === undefined) {
      need("http", ["http", "url"], "");
    }
    if (value.chain.includes("jwt")) {
      const keys = [value.jwt.secret, value.jwt.publicKeyFile, value.jwt.jwksFile]
        .filter((k) => k !== undefined).length;
      if (keys !== 1) {
        ctx.addIssue({
          code: "custom",
          path: ["jwt", "secret"],
          message:
            'expected exactly one of secret, publicKeyFile or jwksFile when auth.chain lists "jwt"',
        });
      }
    }
    if (new Set(value.chain).size !== value.chain.length) {
      ctx.addIssue({ code: "custom", path: ["chain"], message: "expected each kind at most once" });
    }
  })
  .prefault({})
  .meta({ description: "Authentication." });

const acl = section({
  default: oneOf(
    ["allow", "deny"],
    "allow",
    "Decision when no rule matches (never for `$` topics such as `$SYS/...`: only a rule grants those).",
  ),
  rules: aclRules,
  file: pemPath(
    "YAML file with more rules (a list, or `{default, rules}`), checked after `acl.rules`; reloaded on change and on SIGHUP.",
  ),
  watch: boolean(true, "Reload `acl.file` when it changes."),
}, "Authorization (ACL).");

const limits = section({
  maxQueuedBytesTotal: size(
    "1GiB",
    "Most payload bytes queued over all sessions and share groups (each one also has `mqtt.maxQueuedMessages` and `mqtt.maxQueuedBytes`): from 90% of it publishers are slowed down, and beyond it messages are not queued (MQTT 5 publishers get 0x97). One stuck subscriber meets its own bound long before this.",
    { min: 1024 },
  ),
  maxConnections: integer(
    100_000,
    "Most open connections; more are refused at CONNECT (MQTT 5: 0x89 Server busy; 3.1.1: return code 3).",
    { min: 1 },
  ),
  maxConnectionsPerAddress: integer(
    1000,
    "Most open connections from one source address (0: no limit); more are refused (MQTT 5: 0x97 Quota exceeded; 3.1.1: return code 3).",
    { min: 0 },
  ),
  connectRatePerAddress: integer(
    100,
    "Connections per second accepted from one source address, with bursts of as many (0: no limit); more are refused (MQTT 5: 0x9F Connection rate exceeded; 3.1.1: return code 3).",
    { min: 0 },
  ),
  publishRate: integer(
    0,
    "PUBLISH packets per second one client may send, with bursts of as many (0: no limit); a client going faster is disconnected (MQTT 5: DISCONNECT 0x96 Message rate too high).",
    { min: 0 },
  ),
  exemptLoopback: boolean(
    true,
    "Clients on this machine (127.0.0.0/8, ::1) are not subject to the per-address limits.",
  ),
}, "Connection and rate limits against floods.");

/** Roles of the admin API: `admin` may do everything, `viewer` only read (GET). */
export const API_ROLES = ["admin", "viewer"] as const;

/** Parses a JSON list given as text (e.g. from an environment variable); other values pass. */
function jsonListFromText(value: unknown): unknown {
  if (typeof value !== "string") return value;
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

const apiTokenError = "expected a mapping with token and role";
const apiToken = z.strictObject({
  name: z.string({ error: "expected a name" }).min(1, { error: "expected a name" }).optional(),
  token: z.string({ error: "expected a string of at least 16 characters" })
    .min(16, { error: "expected a string of at least 16 characters" }),
  role: z.enum(API_ROLES, { error: `expected ${quoteList(API_ROLES)}` }),
}, { error: apiTokenError });

const VERIFIER_ERROR =
  "expected a SCRAM-SHA-256 verifier (SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>, as deno task passwd writes it), never a plain password";
const apiUser = z.strictObject({
  username: z.string({ error: "expected a user name" }).min(1, { error: "expected a user name" }),
  password: z.string({ error: VERIFIER_ERROR }).regex(
    /^SCRAM-SHA-256\$\d+:[A-Za-z0-9+/]+={0,2}\$[A-Za-z0-9+/]+={0,2}:[A-Za-z0-9+/]+={0,2}$/,
    { error: VERIFIER_ERROR },
  ),
  role: z.enum(API_ROLES, { error: `expected ${quoteList(API_ROLES)}` }),
}, { error: "expected a mapping with username, password and role" });

const adminTls = z.strictObject({
  cert: pemPath(
    "PEM certificate chain: serve the admin API (and `/metrics`, `/healthz`) over HTTPS; needs `key`.",
  ),
  key: pemPath("PEM private key of `admin.tls.cert`."),
}, { error: EXPECTED_MAPPING })
  .superRefine((tls, ctx) => {
    if ((tls.cert === undefined) !== (tls.key === undefined)) {
      ctx.addIssue({
        code: "custom",
        path: [tls.cert === undefined ? "cert" : "key"],
        message: "required with admin.tls." + (tls.cert === undefined ? "key" : "cert"),
      });
    }
  })
  .prefault({})
  .meta({ description: "HTTPS for the admin API." });

const admin = section({
  enabled: boolean(true, "Serve the admin HTTP API, health checks and Prometheus metrics."),
  host: listenHost(),
  port: integer(8888, "Admin API port; 0 picks any free port.", { min: 0, max: 65535 }),
  tokens: z.preprocess(
    jsonListFromText,
    z.array(apiToken, { error: "expected a list of {token, role} mappings (or that list as JSON)" })
      .superRefine((tokens, ctx) => {
        const seen = new Set<string>();
        tokens.forEach((entry, i) => {
          if (seen.has(entry.token)) {
            ctx.addIssue({ code: "custom", path: [i, "token"], message: "duplicate token" });
          }
          seen.add(entry.token);
        });
      }),
  ).prefault([]).meta(
    {
      description:
        "Static API tokens, each `{token, role, name?}` with role `admin` or `viewer`, sent as `x-token` or `Authorization: Bearer`. With no tokens and no `users` the API listens on loopback only.",
      typeLabel: "list",
    } satisfies FieldMeta,
  ),
  users: z.preprocess(
    jsonListFromText,
    z.array(apiUser, {
      error: "expected a list of {username, password, role} mappings (or that list as JSON)",
    }).superRefine((users, ctx) => {
      const seen = new Set<string>();
      users.forEach((entry, i) => {
        if (seen.has(entry.username)) {
          ctx.addIssue({ code: "custom", path: [i, "username"], message: "duplicate user name" });
        }
        seen.add(entry.username);
      });
    }),
  ).prefault([]).meta(
    {
      description:
        "API users who may `POST /api/v1/login`, each `{username, password, role}`; `password` is a SCRAM-SHA-256 verifier as `deno task passwd` writes it, never the password itself.",
      typeLabel: "list",
    } satisfies FieldMeta,
  ),
  jwtSecret: z.string({ error: "expected a string of at least 32 characters" })
    .min(32, { error: "expected a string of at least 32 characters" })
    .optional()
    .meta(
      {
        description:
          "Key that signs login tokens (HS256); random at each start when unset, so tokens do not survive a restart or work on another node.",
        typeLabel: "string",
      } satisfies FieldMeta,
    ),
  jwtTtl: duration("15m", "Lifetime of a token returned by `POST /api/v1/login`.", {
    min: 1000,
  }),
  maxBodySize: size("2MiB", "Largest request body accepted (413 beyond it).", {
    min: 1024,
    max: 1024 * 1024 * 1024,
  }),
  publicMetrics: boolean(
    false,
    "Serve `/metrics` without a token (for a Prometheus that scrapes without credentials).",
  ),
  webSocket: boolean(
    false,
    "Also accept MQTT over WebSocket on the admin port, at `listeners.ws.path` (with `listeners.ws.allowedOrigins`).",
  ),
  tls: adminTls,
  loginMaxFailures: integer(
    5,
    "Failed `POST /api/v1/login` attempts allowed per client address and per user name before that address or name is locked out (429) for `loginLockout`.",
    { min: 1, max: 1000 },
  ),
  loginLockout: duration(
    "5m",
    "How long an address or user name is refused logins after `loginMaxFailures` failures.",
    { min: 1000 },
  ),
  maxBans: integer(
    10_000,
    "Most bans (client id, user name or address) held at once; adding one beyond it answers 409.",
    { min: 1, max: 1_000_000 },
  ),
}, "The admin HTTP API (routes/), health and metrics.");

/** How long the engine waits for any one backbone operation before it gives up. */
const backboneTimeout = () =>
  duration(
    "5s",
    "Longest wait for one backbone operation; past it the operation fails (a QoS 1/2 publish is not acknowledged as a success, a CONNECT is refused with 0x88). A publish waiting for room in a full queue of the memory backbone is bounded by the queue's own rules instead (see delivery guarantees).",
    { min: 1 },
  );

const memoryBackbone = z.strictObject({
  kind: z.literal("memory").meta(
    {
      description: "`memory`: one process, nothing else to run, state lost on exit.",
      typeLabel: '"memory"',
    } satisfies FieldMeta,
  ),
  timeout: backboneTimeout(),
}, { error: EXPECTED_MAPPING });

const NATS_URL_ERROR = "expected a list of NATS URLs such as nats://127.0.0.1:4222";

const natsBackbone = z.strictObject({
  kind: z.literal("nats").meta(
    {
      description:
        "`nats`: sessions, queues, retained messages and routing in NATS JetStream, shared by every front-end (see docs/clustering.md).",
      typeLabel: '"nats"',
    } satisfies FieldMeta,
  ),
  servers: z.array(
    z.string({ error: NATS_URL_ERROR }).regex(/^(nats|tls|wss?):\/\/[^\s]+$/, {
      error: NATS_URL_ERROR,
    }),
    { error: NATS_URL_ERROR },
  ).min(1, { error: NATS_URL_ERROR }).prefault(["nats://127.0.0.1:4222"]).meta(
    {
      description: "NATS servers to connect to (any one will do; the client learns the others).",
      typeLabel: "list of URLs",
    } satisfies FieldMeta,
  ),
  user: optionalText("User name for NATS (with `password`)."),
  password: optionalText("Password of `user`.", "string (secret)"),
  token: optionalText("Authentication token for NATS.", "string (secret)"),
  nkeySeedFile: pemPath("Path to a file holding an nkey seed (`SU…`) to authenticate with."),
  credsFile: pemPath("Path to a NATS credentials file (user JWT and nkey seed)."),
  tls: z.strictObject({
    ca: pemPath("Path to PEM CA certificates the NATS servers' certificates must chain to."),
    cert: pemPath("Path to a PEM client certificate for NATS (mutual TLS); needs `key`."),
    key: pemPath("Path to the PEM private key of `cert`."),
  }, { error: EXPECTED_MAPPING })
    .superRefine((tls, ctx) => {
      if ((tls.cert === undefined) !== (tls.key === undefined)) {
        ctx.addIssue({
          code: "custom",
          path: [tls.cert === undefined ? "cert" : "key"],
          message: "cert and key go together",
        });
      }
    })
    .prefault({})
    .meta({ description: "TLS to NATS (a `tls://` URL or any of these keys turns it on)." }),
  prefix: z.string({ error: 'expected 1 to 32 letters, digits, "-" or "_"' })
    .regex(/^[A-Za-z0-9_-]{1,32}$/, { error: 'expected 1 to 32 letters, digits, "-" or "_"' })
    .prefault("perch")
    .meta(
      {
        description:
          "Prefix of every stream, KV bucket and subject; brokers sharing a prefix are one cluster.",
        typeLabel: "string",
      } satisfies FieldMeta,
    ),
  replicas: integer(
    1,
    "Replicas of the stream and buckets (3 in a 3-node NATS cluster; at most the number of servers).",
    { min: 1, max: 5 },
  ),
  storage: oneOf(
    ["file", "memory"] as const,
    "file",
    "`file`: state survives a restart of NATS; `memory`: faster, lost with the servers.",
  ),
  leaseTimeout: duration(
    "10s",
    "How long a front-end counts as alive after its last heartbeat (it beats every third of it): a front-end that stops beating for this long is lost, and another takes over its clients' sessions and wills. Shorter finds a crash sooner; too short for a loaded machine or network loses live front-ends. Whole seconds.",
    { min: 1000 },
  ),
  ackWait: duration(
    "30s",
    "How long a QoS 1/2 delivery handed to a front-end may stay unacknowledged before NATS hands it out again: after a crash, the wait before a resumed session gets its unacknowledged messages. A front-end holding a delivery longer (a slow client) renews it every third of this.",
    { min: 1000 },
  ),
  timeout: backboneTimeout(),
}, { error: EXPECTED_MAPPING });

const sqliteBackbone = z.strictObject({
  kind: z.literal("sqlite").meta(
    {
      description:
        "`sqlite`: one process, state kept in an SQLite file that survives restarts and crashes (see docs/persistence.md).",
      typeLabel: '"sqlite"',
    } satisfies FieldMeta,
  ),
  path: text(
    "./data/perch.db",
    "The database file (relative to the working directory); its folder is created if missing. One broker at a time may use it.",
  ),
  sync: oneOf(
    ["full", "batched"],
    "full",
    "`full`: a change (a QoS 1/2 message, a session, a retained message) is committed and on disk before it is acknowledged; changes arriving while one commit is synced share the next commit and fsync. `batched`: acknowledged at once and committed every `syncWindow`, so a crash loses up to that window of acknowledged changes.",
  ),
  syncWindow: duration(
    "50ms",
    "With `sync: batched`, the longest a change waits for its commit: what a crash may lose.",
    { min: 1, max: 10_000 },
  ),
  timeout: backboneTimeout(),
}, { error: EXPECTED_MAPPING });

// ---- event notifications and agent mode ----------------------------------------------------------

/** Queue, retry and timeout settings every notification sink has. */
function sinkSettings(what: string) {
  return {
    timeout: duration("5s", `Longest wait for ${what} to take one event.`, { min: 1 }),
    retries: integer(
      3,
      "Attempts after a failed one before the event counts as failed (0: never resent).",
      { min: 0, max: 100 },
    ),
    retryDelay: duration(
      "1s",
      "Wait before the first resend; it doubles with each further one, up to a minute.",
      { min: 0 },
    ),
    queueSize: integer(
      10_000,
      "Most events waiting for this sink; beyond it new events are dropped (counted and logged), never slowing MQTT traffic.",
      { min: 1, max: 10_000_000 },
    ),
    concurrency: integer(
      1,
      "Events sent at once. Events of one client always go one after the other, in order; more than 1 lets other clients' events pass a slow one.",
      { min: 1, max: 64 },
    ),
  };
}

const WEBHOOK_URL_ERROR = "expected an http:// or https:// URL";
const GRPC_SERVER_ERROR = 'expected host:port, such as "127.0.0.1:9999"';

const notify = section(
  {
    webhook: section({
      url: z.string({ error: WEBHOOK_URL_ERROR })
        .refine((value) => {
          try {
            return ["http:", "https:"].includes(new URL(value).protocol);
          } catch {
            return false;
          }
        }, { error: WEBHOOK_URL_ERROR })
        .transform((value) => value.replace(/\/+$/, ""))
        .optional()
        .meta(
          {
            description:
              "Base URL of the receiver: each event is `POST {url}/{EventName}` with smq's JSON body. Setting it turns the webhook on.",
            typeLabel: "URL",
          } satisfies FieldMeta,
        ),
      secret: optionalText(
        "Key of the `X-Perch-Signature: sha256=<hex>` header, an HMAC-SHA256 of the body; none when unset.",
        "string (secret)",
      ),
      ...sinkSettings("the receiver"),
    }, "Webhook sink: one HTTP POST per event."),
    grpc: section({
      server: z.string({ error: GRPC_SERVER_ERROR })
        .regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}$/, { error: GRPC_SERVER_ERROR })
        .optional()
        .meta(
          {
            description:
              "The receiver's `host:port`, serving smq's `pb.Notify` service (`proto/notify.proto`). Setting it turns the gRPC sink on.",
            typeLabel: "host:port",
          } satisfies FieldMeta,
        ),
      tls: z.strictObject({
        enabled: boolean(false, "Connect with TLS."),
        ca: pemPath(
          "PEM CA certificates the server's certificate must chain to (system roots when unset).",
        ),
        cert: pemPath("PEM client certificate (mutual TLS); needs `key`."),
        key: pemPath("PEM private key of `cert`."),
      }, { error: EXPECTED_MAPPING })
        .superRefine((tls, ctx) => {
          if ((tls.cert === undefined) !== (tls.key === undefined)) {
            ctx.addIssue({
              code: "custom",
              path: [tls.cert === undefined ? "cert" : "key"],
              message: "cert and key go together",
            });
          }
        })
        .prefault({})
        .meta({ description: "TLS to the gRPC receiver." }),
      ...sinkSettings("the receiver"),
    }, "gRPC sink: one unary call of `pb.Notify` per event, as smq makes."),
    nats: section({
      enabled: boolean(false, "Publish each event to `{prefix}.events.{EventName}` on NATS."),
      servers: z.array(
        z.string({ error: NATS_URL_ERROR }).regex(/^(nats|tls|wss?):\/\/[^\s]+$/, {
          error: NATS_URL_ERROR,
        }),
        { error: NATS_URL_ERROR },
      ).min(1, { error: NATS_URL_ERROR }).optional().meta(
        {
          description:
            "NATS servers to publish to; the backbone's servers (and credentials) when unset, which needs `backbone.kind: nats`.",
          typeLabel: "list of URLs",
        } satisfies FieldMeta,
      ),
      prefix: z.string({ error: 'expected 1 to 32 letters, digits, "-" or "_"' })
        .regex(/^[A-Za-z0-9_-]{1,32}$/, { error: 'expected 1 to 32 letters, digits, "-" or "_"' })
        .optional()
        .meta(
          {
            description:
              "First token of the subjects: `backbone.prefix` with the NATS backbone, else `perch`.",
            typeLabel: "string",
          } satisfies FieldMeta,
        ),
      user: optionalText("User name for `servers` (with `password`)."),
      password: optionalText("Password of `user`.", "string (secret)"),
      token: optionalText("Authentication token for `servers`.", "string (secret)"),
      ...sinkSettings("NATS"),
    }, "NATS sink: core NATS publishes."),
  },
  "Event notifications (docs/notifications.md): client connects and disconnects, subscriptions, agents.",
);

const agent = section({
  enabled: boolean(
    false,
    "Agent mode: a client subscribed to `agents/{its own client id}` is an online agent (OnAgentConnect; OnAgentDisconnected when it unsubscribes or goes), listed by `/api/v1/agents` (docs/agents.md).",
  ),
  legacyConnectInfo: boolean(
    false,
    "Accept smq's legacy CONNECT trailer (a two-byte length and JSON host facts after the payload, which smq's agent library always sends). Off, such a CONNECT is malformed and refused.",
  ),
  maxAgents: integer(
    100_000,
    "Most agents remembered over the cluster; a new agent beyond it replaces the longest offline one, or is not listed when all are online.",
    { min: 1, max: 10_000_000 },
  ),
}, "Agent mode (docs/agents.md).");

/** Backbone kinds. */
const backboneVariants = [memoryBackbone, natsBackbone, sqliteBackbone] as const;

const KAFKA_BROKER_ERROR = 'expected a list of Kafka brokers such as "kafka-1:9092"';

const KAFKA_MAPPING_ERROR =
  "expected a mapping: { name, filter, kafkaTopic, key?, format?, payloadEncoding?, headers?, copy? }";

/** A mapping from an MQTT topic filter to a Kafka topic, as the config file writes it. */
const kafkaMapping = z.strictObject({
  name: z.string({ error: 'expected 1 to 64 letters, digits, ".", "_" or "-"' })
    .regex(/^[A-Za-z0-9._-]{1,64}$/, {
      error: 'expected 1 to 64 letters, digits, ".", "_" or "-"',
    }),
  filter: z.string({ error: "expected a topic filter" }).min(1, {
    error: "expected a topic filter",
  })
    .superRefine((filter, ctx) => {
      const problem = topicFilterProblem(filter) ??
        (/^\$(share|queue)\//.test(filter)
          ? "write it without $share/ or $queue/: it is matched against the topic after $queue/"
          : undefined);
      if (problem) ctx.addIssue({ code: "custom", message: `expected a topic filter: ${problem}` });
    }),
  kafkaTopic: z.string({ error: "expected a Kafka topic name" })
    .regex(/^(?!\.{1,2}$)[A-Za-z0-9._-]{1,249}$/, {
      error: 'expected a Kafka topic name: 1 to 249 letters, digits, ".", "_" or "-"',
    }),
  key: z.string({ error: "expected a key template" })
    .regex(/^(?:[^{}]|\{(?:topic|clientId|username)\})*$/, {
      error: "expected a key template: text with {topic}, {clientId} or {username}",
    }).optional(),
  format: z.enum(["raw", "json"], { error: 'expected "raw" or "json"' }).optional(),
  payloadEncoding: z.enum(["base64", "utf8"], { error: 'expected "base64" or "utf8"' }).optional(),
  headers: z.boolean({ error: "expected true or false" }).optional(),
  copy: z.boolean({ error: "expected true or false" }).optional(),
}, { error: KAFKA_MAPPING_ERROR });

/** The Kafka bridge: off while `brokers` is empty. */
const kafkaBridge = section({
  brokers: z.preprocess(
    (value) =>
      typeof value === "string"
        ? value.split(",").map((entry) => entry.trim()).filter((entry) => entry !== "")
        : value,
    z.array(
      z.string({ error: KAFKA_BROKER_ERROR }).regex(
        /^[^\s:]+:\d{1,5}$|^\[[0-9A-Fa-f:.]+\]:\d{1,5}$/,
        {
          error: (issue) => `not a host:port: ${JSON.stringify(issue.input)}`,
        },
      ),
      { error: KAFKA_BROKER_ERROR },
    ),
  ).prefault([]).meta(
    {
      description:
        "Kafka brokers to bootstrap from (`host:port`, any of them will do); empty leaves the bridge off.",
      typeLabel: "list of host:port",
    } satisfies FieldMeta,
  ),
  clientId: text("perch", "Client id the bridge gives Kafka (in its logs and quotas)."),
  tls: z.strictObject({
    enabled: boolean(false, "Connect to Kafka over TLS."),
    ca: pemPath(
      "PEM CA certificates the brokers' certificates must chain to (default: the system's).",
    ),
    cert: pemPath("PEM client certificate (mutual TLS); needs `key`."),
    key: pemPath("PEM private key of `cert`."),
  }, { error: EXPECTED_MAPPING })
    .superRefine((tls, ctx) => {
      if ((tls.cert === undefined) !== (tls.key === undefined)) {
        ctx.addIssue({
          code: "custom",
          path: [tls.cert === undefined ? "cert" : "key"],
          message: "cert and key go together",
        });
      }
    })
    .prefault({})
    .meta({ description: "TLS to Kafka." }),
  sasl: z.strictObject({
    mechanism: oneOf(
      ["none", "plain", "scram-sha-256", "scram-sha-512"],
      "none",
      "SASL mechanism to authenticate with (`plain` only over TLS, unless on a trusted network).",
    ),
    username: optionalText("SASL user name."),
    password: optionalText("SASL password.", "string (secret)"),
  }, { error: EXPECTED_MAPPING })
    .superRefine((sasl, ctx) => {
      if (sasl.mechanism === "none") return;
      for (const key of ["username", "password"] as const) {
        if (sasl[key] === undefined) {
          ctx.addIssue({
            code: "custom",
            path: [key],
            message: `required when bridge.kafka.sasl.mechanism is "${sasl.mechanism}"`,
          });
        }
      }
    })
    .prefault({})
    .meta({ description: "SASL authentication to Kafka." }),
  compression: oneOf(["none", "gzip"], "none", "Compression of the record batches sent."),
  batch: section({
    maxMessages: integer(500, "Most records in one produce request.", { min: 1, max: 100_000 }),
    maxBytes: size(
      "512KiB",
      "Most key and value bytes in one produce request (Kafka refuses batches over its `message.max.bytes`, 1 MB by default); a larger record goes alone.",
      { min: 1024 },
    ),
    linger: duration(
      "5ms",
      "How long the bridge waits for more records before it sends a request that is not full (0: send at once).",
      { min: 0 },
    ),
  }, "Record batches."),
  idempotent: boolean(
    true,
    "Idempotent producer: Kafka stores a batch the bridge sends again (after a lost answer) only once, and keeps the order per partition. Needs `acks: all`.",
  ),
  acks: oneOf(
    ["all", "leader", "none"],
    "all",
    "Acknowledgement the bridge waits for: `all` in-sync replicas, the `leader` only, or `none` (a record then counts as produced when sent).",
  ),
  buffer: section({
    maxMessages: integer(
      100_000,
      "Most messages waiting for Kafka (in the backbone's outbox, or in memory when it has none); beyond it a QoS 1/2 publisher gets 0x97 and QoS 0 is dropped and counted.",
      { min: 1 },
    ),
    maxBytes: size("256MiB", "Most bytes waiting for Kafka, as the outbox counts them.", {
      min: 1024,
    }),
  }, "The buffer of messages accepted and not yet produced."),
  retry: section({
    initialDelay: duration("100ms", "Wait before the first retry of a failed request.", {
      min: 1,
    }),
    maxDelay: duration(
      "30s",
      "Longest wait between retries (the wait doubles after each failure up to this). The bridge retries for as long as Kafka is away; only a record Kafka refuses for good (too large, not authorized) is dropped, counted and logged.",
      { min: 1 },
    ),
  }, "How the bridge retries while Kafka is away."),
  mappings: z.array(kafkaMapping, { error: "expected a list of mappings" })
    .superRefine((mappings, ctx) => {
      const seen = new Set<string>();
      mappings.forEach((mapping, i) => {
        if (seen.has(mapping.name)) {
          ctx.addIssue({ code: "custom", path: [i, "name"], message: "duplicate mapping name" });
        }
        seen.add(mapping.name);
      });
    })
    .prefault([])
    .meta(
      {
        description:
          "Mappings kept in this file (read-only in the admin API, which adds its own to the backbone's config store): `{ name, filter, kafkaTopic, key?, format?, payloadEncoding?, headers?, copy? }`. A publish to `$queue/{topic}` goes to every mapping whose `filter` matches `{topic}`; one with `copy: true` also takes ordinary publishes matching it. See docs/kafka-bridge.md.",
        typeLabel: "list of mappings",
      } satisfies FieldMeta,
    ),
  connectTimeout: duration("10s", "Longest wait for a connection to a Kafka broker.", {
    min: 1,
  }),
  requestTimeout: duration("30s", "Longest wait for Kafka's answer to one request.", { min: 1 }),
}, "The Kafka bridge: MQTT messages to Kafka topics (see docs/kafka-bridge.md).");

const bridge = section({
  kafka: kafkaBridge.superRefine((kafka, ctx) => {
    if (kafka.idempotent && kafka.acks !== "all") {
      ctx.addIssue({
        code: "custom",
        path: ["acks"],
        message: 'expected "all" when bridge.kafka.idempotent is true',
      });
    }
  }),
}, "Bridges from MQTT to other systems.");

/** The whole configuration schema; parse input with it to get a {@linkcode Config}. */
export const configSchema = z.strictObject({
  node: section({
    id: z.string({ error: NODE_ID_ERROR }).regex(/^[A-Za-z0-9_-]{1,128}$/, { error: NODE_ID_ERROR })
      .default(defaultNodeId)
      .meta(
        {
          description: "This broker's name in logs, $SYS topics and the cluster.",
          typeLabel: "string",
          defaultLabel: "<hostname>-<pid>",
        } satisfies FieldMeta,
      ),
  }, "This broker process."),
  log: section({
    level: oneOf(LOG_LEVELS, "info", "Least severe level logged."),
    format: oneOf(LOG_FORMATS, "text", "`text` (key=value lines) or `json` (one object per line)."),
  }, "Logging."),
  listeners: section({
    tcp: tcpListener,
    tls: tlsListener,
    ws: wsListener,
    wss: wssListener,
  }, "Network listeners."),
  mqtt,
  limits,
  auth,
  acl,
  admin,
  retained: section({
    maxMessages: integer(1_000_000, "Most retained messages kept.", { min: 0 }),
    maxBytes: size("512MiB", "Most bytes of retained messages kept (topics and payloads).", {
      min: 0,
    }),
  }, "Retained message store limits."),
  sys: section({
    enabled: boolean(true, "Publish broker statistics on `$SYS/` topics."),
    interval: duration("10s", "Time between `$SYS/` updates.", { min: 1000 }),
  }, "The `$SYS/` topic tree."),
  backbone: z.discriminatedUnion("kind", backboneVariants, {
    // Called with invalid_union for an unknown kind, and (despite the type) with invalid_type for
    // a non-mapping.
    error: (issue) =>
      issue.code === "invalid_union"
        ? `expected ${quoteList(backboneVariants.map((v) => v.shape.kind.value))}`
        : EXPECTED_MAPPING,
  })
    .prefault({ kind: "memory" })
    .meta({ description: "Where sessions, subscriptions, queues and retained messages live." }),
  notify,
  agent,
  bridge,
  memory: section({
    idleCollection: boolean(
      true,
      "Collect garbage once the broker is quiet (for a quarter second no connection opened or closed and " +
        "under 5% of a core used) after `idleCollectionAfter` connections opened or closed: it " +
        "gives the memory of a burst of connections back to the system, at a moment when its " +
        "pause (about 0.1 s at 10,000 connections) delays little traffic. Uses the runtime's " +
        "full collection: Bun's, or V8's on Deno (exposed at start).",
    ),
    idleCollectionAfter: integer(
      1000,
      "Connections opened or closed since the last idle collection that make another worth it.",
      { min: 1 },
    ),
  }, "Memory given back after bursts."),
  shutdown: section({
    gracePeriod: duration(
      "5s",
      "Time given to clients to disconnect and to queues to drain on shutdown.",
      { min: 0 },
    ),
  }, "Graceful shutdown."),
}, { error: EXPECTED_MAPPING })
  .superRefine((config, ctx) => {
    const nats = config.notify.nats;
    if (nats.enabled && nats.servers === undefined && config.backbone.kind !== "nats") {
      ctx.addIssue({
        code: "custom",
        path: ["notify", "nats", "servers"],
        message: "required when notify.nats.enabled is true and backbone.kind is not nats",
      });
    }
  });

/** A validated configuration: every key present, durations in milliseconds, sizes in bytes. */
export type Config = z.output<typeof configSchema>;

/** Configuration as written: every key optional, durations and sizes as numbers or strings with units. */
export type ConfigInput = z.input<typeof configSchema>;
