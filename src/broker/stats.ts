/**
 * Counters the broker keeps for `$SYS`, metrics and the admin API. Plain fields and fixed-size
 * arrays indexed by QoS or protocol level: bumping one is a property write, nothing more, so they
 * stay on the hot path; gauges that need a walk (inflight, queued) are computed when read.
 */
export class BrokerStats {
  /** Epoch ms the broker started. */
  readonly startedAt: number;
  connectionsAccepted = 0;
  /** Connections refused for a connection limit (total, per address, rate). */
  connectionsRefused = 0;
  /** Clients disconnected for publishing faster than `publishRate`. */
  publishRateExceeded = 0;
  clientsConnected = 0;
  clientsConnectedTotal = 0;
  /** Connected clients by protocol level (index 3, 4 or 5; the others stay 0). */
  readonly clientsConnectedByVersion: number[] = [0, 0, 0, 0, 0, 0];
  /** Completed CONNECTs by protocol level (index 3, 4 or 5). */
  readonly clientsConnectedTotalByVersion: number[] = [0, 0, 0, 0, 0, 0];
  authFailures = 0;
  protocolErrors = 0;
  bytesReceived = 0;
  bytesSent = 0;
  publishReceived = 0;
  publishSent = 0;
  /** PUBLISH packets received from clients, by QoS (index 0..2). */
  readonly publishReceivedByQos: number[] = [0, 0, 0];
  /** PUBLISH packets sent to clients, by QoS (index 0..2). */
  readonly publishSentByQos: number[] = [0, 0, 0];
  /** Payload bytes of PUBLISH packets received, by QoS. */
  readonly payloadBytesReceivedByQos: number[] = [0, 0, 0];
  /** Payload bytes of PUBLISH packets sent, by QoS. */
  readonly payloadBytesSentByQos: number[] = [0, 0, 0];
  publishDenied = 0;
  inflightCompleted = 0;
  droppedExpired = 0;
  droppedSlowConsumer = 0;
  droppedQueueFull = 0;
  /**
   * Of `droppedQueueFull`, those refused because the subscriber was taken for stuck (nothing
   * acknowledged for `mqtt.stuckSubscriberTimeout` while publishes waited) or is offline.
   */
  droppedStuckSubscriber = 0;
  droppedTooLarge = 0;
  droppedNotAuthorized = 0;
  retainedRejected = 0;
  slowConsumerDisconnects = 0;
  /**
   * Connections refused before CONNACK for breaking the protocol (a malformed or invalid CONNECT,
   * an unsupported protocol level, a bad client id or will); refusals for limits, authentication
   * and an unavailable store are counted by their own counters.
   */
  connectsRefusedProtocol = 0;
  /** Publishes after which the publisher was slowed: queues near their global ceiling. */
  publishersSlowed = 0;
  /**
   * Times a publisher's input was held because a queue it publishes to held more than its
   * subscriber takes at once, or its publish waited for room (`mqtt.queueFullPolicy: wait`).
   */
  publishersHeld = 0;
  /** QoS 1/2 messages refused because the backbone could not store them (never acknowledged). */
  publishNotStored = 0;
  /** CONNECTs whose host facts (user properties, legacy trailer) were ignored in part or whole. */
  agentFactsIgnored = 0;
  /** Backbone calls that failed or timed out, by operation (e.g. "messages.publish"). */
  readonly backboneFailures: Map<string, number> = new Map();

  constructor(startedAt: number) {
    this.startedAt = startedAt;
  }
}
