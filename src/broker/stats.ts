/** Counters the broker keeps for `$SYS`, metrics and the admin API. Plain fields: cheap to bump. */
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
  authFailures = 0;
  protocolErrors = 0;
  bytesReceived = 0;
  bytesSent = 0;
  publishReceived = 0;
  publishSent = 0;
  publishDenied = 0;
  inflightCompleted = 0;
  droppedExpired = 0;
  droppedSlowConsumer = 0;
  droppedQueueFull = 0;
  droppedTooLarge = 0;
  droppedNotAuthorized = 0;
  retainedRejected = 0;
  slowConsumerDisconnects = 0;

  constructor(startedAt: number) {
    this.startedAt = startedAt;
  }
}
