/**
 * Real receivers of event notifications for tests: an HTTP server (Deno.serve) for the webhook
 * sink and a gRPC server (`@grpc/grpc-js`, loading the repository's `proto/notify.proto`) for the
 * gRPC sink, both on free ports of 127.0.0.1, both recording what they took and letting a test
 * wait for it.
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import { loadNotifyService, NOTIFY_TYPE_URL } from "../../src/events/grpc.ts";
import { EVENT_NAMES } from "../../src/events/records.ts";

/** One notification as a receiver took it. */
export interface Received {
  name: string;
  body: Record<string, unknown>;
  /** Webhook: the request headers. */
  headers?: Headers;
}

/** What receivers share: what they took and a wait for it. */
class Inbox {
  readonly received: Received[] = [];
  readonly #waiters = new Set<() => void>();

  add(entry: Received): void {
    this.received.push(entry);
    for (const waiter of [...this.#waiters]) waiter();
  }

  /** Resolves once `predicate` holds for what was received (fails after `timeoutMs`). */
  until(predicate: (received: Received[]) => boolean, timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!predicate(this.received)) return;
        this.#waiters.delete(check);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(
          new Error(
            `not received within ${timeoutMs} ms; got ${
              JSON.stringify(this.received.map((r) => [r.name, r.body.id ?? r.body.client_id]))
            }`,
          ),
        );
      }, timeoutMs);
      this.#waiters.add(check);
      check();
    });
  }

  /** Bodies of the notifications named `name`. */
  bodies(name: string): Record<string, unknown>[] {
    return this.received.filter((r) => r.name === name).map((r) => r.body);
  }
}

/** How the webhook receiver answers one request. */
export type WebhookBehaviour = (name: string, attempt: number) => number | "hang";

/** An HTTP receiver of `POST /{EventName}`. */
export class WebhookReceiver extends Inbox {
  readonly url: string;
  /** Requests seen per event name (including the ones answered with an error). */
  readonly attempts = new Map<string, number>();
  readonly #server: Deno.HttpServer;
  readonly #hanging = new Set<() => void>();

  constructor(behaviour: WebhookBehaviour = () => 200) {
    super();
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      async (request) => {
        const name = new URL(request.url).pathname.split("/").at(-1)!;
        const text = await request.text();
        const attempt = (this.attempts.get(name) ?? 0) + 1;
        this.attempts.set(name, attempt);
        const answer = behaviour(name, attempt);
        if (answer === "hang") {
          await new Promise<void>((resolve) => this.#hanging.add(resolve));
          return new Response(null, { status: 503 });
        }
        if (answer >= 200 && answer < 300) {
          this.add({ name, body: JSON.parse(text), headers: request.headers });
        }
        return new Response(null, { status: answer });
      },
    );
    this.url = `http://127.0.0.1:${(this.#server.addr as Deno.NetAddr).port}/hooks`;
  }

  /** Requests being held unanswered. */
  get hanging(): number {
    return this.#hanging.size;
  }

  async close(): Promise<void> {
    for (const release of this.#hanging) release();
    this.#hanging.clear();
    await this.#server.shutdown();
  }
}

/** A gRPC server of smq's `pb.Notify`. */
export class GrpcReceiver extends Inbox {
  readonly #server: grpc.Server;
  port = 0;
  /** Calls answered `status: false`, per event name, before this many calls succeed. */
  refuseFirst = 0;
  #calls = 0;

  constructor() {
    super();
    this.#server = new grpc.Server();
    const handlers: grpc.UntypedServiceImplementation = {};
    for (const name of EVENT_NAMES) {
      handlers[name] = (
        call: grpc.ServerUnaryCall<{ data: { type_url: string; value: Uint8Array } }, unknown>,
        callback: grpc.sendUnaryData<{ status: boolean }>,
      ) => {
        if (this.#calls++ < this.refuseFirst) return callback(null, { status: false });
        const { type_url: typeUrl, value } = call.request.data;
        if (typeUrl !== NOTIFY_TYPE_URL) throw new Error(`unexpected type_url ${typeUrl}`);
        this.add({ name, body: JSON.parse(new TextDecoder().decode(value)) });
        callback(null, { status: true });
      };
    }
    this.#server.addService(loadNotifyService().service, handlers);
  }

  static async start(): Promise<GrpcReceiver> {
    const receiver = new GrpcReceiver();
    receiver.port = await new Promise<number>((resolve, reject) =>
      receiver.#server.bindAsync(
        "127.0.0.1:0",
        grpc.ServerCredentials.createInsecure(),
        (error, port) => error ? reject(error) : resolve(port),
      )
    );
    return receiver;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#server.tryShutdown(() => resolve()));
  }
}
