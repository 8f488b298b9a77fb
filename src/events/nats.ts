/**
 * The NATS sink: each event is a core NATS publish of its JSON body to
 * `{prefix}.events.{EventName}`, confirmed by a flush (the server's PONG), so an event counts as
 * sent only once the server has it. The connection is made in the background and kept up by the
 * client's reconnects: a server that is down when the broker starts costs failed sends, nothing
 * more.
 *
 * @module
 */

import {
  type Authenticator,
  credsAuthenticator,
  type NatsConnection,
  nkeyAuthenticator,
} from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import type { Sender } from "./queue.ts";
import type { Notification } from "./records.ts";

/** Where to publish and how to connect. */
export interface NatsSinkOptions {
  servers: string[];
  /** First token of the subjects. */
  prefix: string;
  user?: string;
  password?: string;
  token?: string;
  /** An nkey seed (`SU…`). */
  nkeySeed?: string;
  /** The contents of a NATS credentials file. */
  creds?: Uint8Array;
  /** TLS files. */
  tls?: { ca?: string; cert?: string; key?: string };
  /** Longest wait for the connection and for one publish's flush, in ms. */
  timeoutMs: number;
  /** The connection's name as the server shows it. */
  name: string;
}

/** Publishes notifications on NATS. */
export class NatsSender implements Sender {
  readonly #options: NatsSinkOptions;
  readonly #connection: Promise<NatsConnection>;
  #connected: NatsConnection | undefined;
  #closed = false;

  constructor(options: NatsSinkOptions) {
    this.#options = options;
    const authenticator: Authenticator[] = [];
    if (options.nkeySeed) {
      authenticator.push(nkeyAuthenticator(new TextEncoder().encode(options.nkeySeed)));
    }
    if (options.creds) authenticator.push(credsAuthenticator(options.creds));
    const tls = options.tls && (options.tls.ca || options.tls.cert)
      ? {
        ...(options.tls.ca ? { caFile: options.tls.ca } : {}),
        ...(options.tls.cert ? { certFile: options.tls.cert, keyFile: options.tls.key } : {}),
      }
      : undefined;
    this.#connection = connect({
      servers: options.servers,
      name: options.name,
      user: options.user,
      pass: options.password,
      token: options.token,
      ...(authenticator.length > 0 ? { authenticator } : {}),
      ...(tls ? { tls } : {}),
      timeout: options.timeoutMs,
      waitOnFirstConnect: true,
      maxReconnectAttempts: -1,
    });
    this.#connection.then((nc) => {
      if (this.#closed) nc.close();
      else this.#connected = nc;
    }, () => {}); // A failed first connect is reported by each send.
  }

  /** The subject of an event. */
  subject(notification: Notification): string {
    return `${this.#options.prefix}.events.${notification.name}`;
  }

  async send(notification: Notification): Promise<void> {
    const nc = await within(this.#connection, this.#options.timeoutMs, "connecting to NATS");
    if (this.#closed) throw new Error("the NATS sink is closed");
    nc.publish(this.subject(notification), notification.body);
    await within(nc.flush(), this.#options.timeoutMs, "the NATS server's acknowledgement");
  }

  async close(): Promise<void> {
    // Still connecting: the connection is closed when (if ever) it is made.
    this.#closed = true;
    await this.#connected?.close();
  }
}

/** `work`, or a rejection naming `what` after `ms`. */
function within<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    work,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
