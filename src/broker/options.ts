import type { QoS } from "../codec/packets.ts";

/**
 * Settings the engine runs with. `main.ts` fills them from the validated config (`mqtt`, `sys`,
 * `node` and `retained` sections), which is where every default lives; durations are milliseconds
 * unless the name says seconds, sizes are bytes.
 */
export interface BrokerOptions {
  /** This front-end's id (session ownership, logs). */
  nodeId: string;
  /** Largest packet accepted from clients, announced as Maximum Packet Size. */
  maxPacketSize: number;
  /** Time from accept to a complete CONNECT, and the limit for a half-received packet. */
  connectTimeout: number;
  maxClientIdLength: number;
  /** Assign ids to clients that send an empty one. */
  allowEmptyClientId: boolean;
  /** Seconds; larger (or disabled) keep alives get Server Keep Alive (MQTT 5) or are refused. */
  maxKeepAlive: number;
  /** Connections silent for this many keep alive periods are closed [MQTT-3.1.2-24]. */
  keepAliveMultiplier: number;
  /** Inbound QoS 1/2 window announced to MQTT 5 clients. */
  receiveMaximum: number;
  /** Outbound QoS 1/2 window per client (capped by the client's Receive Maximum). */
  maxInflight: number;
  maxQueuedMessages: number;
  maxQueuedBytes: number;
  maxQos: QoS;
  retainAvailable: boolean;
  wildcardSubscriptionAvailable: boolean;
  sharedSubscriptionAvailable: boolean;
  subscriptionIdentifierAvailable: boolean;
  /** Inbound topic aliases accepted per connection (0 disables). */
  topicAliasMaximum: number;
  /** Server-to-client topic aliases when the client allows them. */
  outboundTopicAliases: "off" | "lru";
  maxTopicLength: number;
  maxTopicLevels: number;
  maxSubscriptionsPerClient: number;
  /** Seconds; longer session expiry requests are capped. */
  maxSessionExpiryInterval: number;
  /** Bytes queued on one connection before QoS 0 messages to it are dropped. */
  writeBufferLimit: number;
  /** Ms a client may keep its window full without acknowledging before it is disconnected. */
  slowConsumerTimeout: number;
  /** What a full subscriber queue does with a new message (see `QueueLimits.whenFull`). */
  queueFullPolicy: "wait" | "refuse";
  /** Ms a subscriber with publishes waiting for its full queue may acknowledge nothing (`wait`). */
  stuckSubscriberTimeout: number;
  /** Ms between sweeps for offline sessions nobody watches. */
  sessionSweepInterval: number;
  /** Ms the engine waits for one backbone operation. */
  backboneTimeout: number;
  /** Response Information template (`%c`: client id) for clients that request it; "" for none. */
  responseInformation: string;
  /**
   * Refuse client ids, user names, topics and filters containing U+0001-U+001F or U+007F-U+009F
   * (CONNACK 0x85 for a client id, 0x81 otherwise; DISCONNECT 0x81 for topics).
   */
  rejectControlCharacters: boolean;
  /** Reject payloads marked UTF-8 that are not (0x99). */
  validatePayloadFormat: boolean;
  /** When not "", refuse MQTT 5 CONNECTs with 0x9C/0x9D and this Server Reference. */
  serverReference: string;
  /** Redirect permanently (0x9D) rather than temporarily (0x9C). */
  serverMoved: boolean;
  /** Interval of `$SYS` updates in ms; 0 disables them. */
  sysInterval: number;
  /** Most open connections. */
  maxConnections: number;
  /** Most open connections per source address; 0: no limit. */
  maxConnectionsPerAddress: number;
  /** Connects per second per source address (bursts of as many); 0: no limit. */
  connectRatePerAddress: number;
  /** PUBLISH packets per second per client (bursts of as many); 0: no limit. */
  publishRate: number;
  /** Loopback clients skip the per-address limits. */
  exemptLoopback: boolean;
  /**
   * Accept smq's legacy CONNECT trailer (a two-byte length and JSON host facts after the
   * payload); off, such a CONNECT is malformed.
   */
  legacyConnectInfo: boolean;
}
