/**
 * The gRPC sink: smq's `pb.Notify` service (`proto/notify.proto`), one unary call per event named
 * after it, with the event's JSON in `NotifyRequest.data` (a `google.protobuf.Any` whose
 * `type_url` is `application/json`), so smq's receivers work unchanged. A call that fails, times
 * out or answers `status: false` is retried. The channel connects lazily and reconnects on its
 * own: a receiver that is down when the broker starts costs failed calls, nothing more.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import type { Sender } from "./queue.ts";
import type { Notification } from "./records.ts";

/** The service definition, in the repository. */
export const NOTIFY_PROTO: URL = new URL("../../proto/notify.proto", import.meta.url);

/** `NotifyRequest.data.type_url` of every call. */
export const NOTIFY_TYPE_URL = "application/json";

/** Where and how to call. */
export interface GrpcOptions {
  /** `host:port` of the receiver. */
  server: string;
  /** TLS (PEM contents), or undefined for a plain connection. */
  tls: { ca?: Uint8Array; cert?: Uint8Array; key?: Uint8Array } | undefined;
  /** Deadline of one call, in ms. */
  timeoutMs: number;
}

/** The client constructor of `pb.Notify`, loaded once from {@linkcode NOTIFY_PROTO}. */
export function loadNotifyService(): grpc.ServiceClientConstructor {
  const definition = protoLoader.loadSync(decodeURIComponent(NOTIFY_PROTO.pathname), {
    keepCase: true,
  });
  const pb = grpc.loadPackageDefinition(definition).pb as grpc.GrpcObject;
  return pb.Notify as grpc.ServiceClientConstructor;
}

type UnaryCall = (
  request: unknown,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, response?: { status?: boolean }) => void,
) => void;

/** Calls `pb.Notify` on one receiver. */
export class GrpcSender implements Sender {
  readonly #client: grpc.Client;
  readonly #timeoutMs: number;

  constructor(options: GrpcOptions) {
    const Notify = loadNotifyService();
    const credentials = options.tls
      ? grpc.credentials.createSsl(
        options.tls.ca === undefined ? null : Buffer.from(options.tls.ca),
        options.tls.key === undefined ? null : Buffer.from(options.tls.key),
        options.tls.cert === undefined ? null : Buffer.from(options.tls.cert),
      )
      : grpc.credentials.createInsecure();
    this.#client = new Notify(options.server, credentials);
    this.#timeoutMs = options.timeoutMs;
  }

  send(notification: Notification): Promise<void> {
    const call = (this.#client as unknown as Record<string, UnaryCall>)[notification.name]
      .bind(this.#client);
    const request = {
      data: { type_url: NOTIFY_TYPE_URL, value: new TextEncoder().encode(notification.body) },
    };
    return new Promise((resolve, reject) => {
      call(request, { deadline: Date.now() + this.#timeoutMs }, (error, response) => {
        if (error) reject(new Error(`${notification.name}: ${error.message}`));
        else if (response?.status !== true) {
          reject(new Error(`${notification.name}: the receiver answered status false`));
        } else resolve();
      });
    });
  }

  close(): Promise<void> {
    this.#client.close();
    return Promise.resolve();
  }
}
