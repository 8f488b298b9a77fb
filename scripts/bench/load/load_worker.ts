/**
 * Entry point of a load worker (a Deno Worker): runs a share of a run's publishers and subscribers and
 * follows the coordinator's phases (see `run_load.ts`).
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { connectMqtt, subscribeMqtt } from "../mqtt_client.ts";
import { LoadCounters } from "./counters.ts";
import type { FromWorker, ToWorker, WorkerSpec } from "./protocol.ts";
import { Publisher } from "./publisher.ts";
import { Subscriber } from "./subscriber.ts";

function post(message: FromWorker, transfer: Transferable[] = []): void {
  self.postMessage(message, transfer);
}

function fail(error: unknown): void {
  post({
    kind: "error",
    message: error instanceof Error ? error.stack ?? error.message : `${error}`,
  });
}

/** The clients of this worker and their state across phases. */
class LoadWorker {
  #publishers: Publisher[] = [];
  #subscribers: Subscriber[] = [];
  #publishing: Promise<void>[] = [];

  async handle(message: ToWorker): Promise<void> {
    switch (message.kind) {
      case "init":
        await this.#init(message.spec);
        return post({ kind: "ready" });
      case "start":
        this.#publishing = this.#publishers.map((publisher) => publisher.run().catch(fail));
        return;
      case "mark-start":
      case "mark-end": {
        const now = performance.now();
        for (const subscriber of this.#subscribers) {
          subscriber.markWindow(message.kind === "mark-start", now);
        }
        return;
      }
      case "stop":
        for (const publisher of this.#publishers) publisher.stop();
        await Promise.all(this.#publishing);
        return post({
          kind: "stopped",
          published: this.#publishers.map((publisher) => ({
            index: publisher.index,
            count: publisher.published,
          })),
          unacked: this.#publishers.reduce((sum, publisher) => sum + publisher.unacked, 0),
        });
      case "finish":
        return this.#finish();
    }
  }

  async #init(spec: WorkerSpec): Promise<void> {
    const counters = new LoadCounters(spec.publisherCount, spec.subscriberCount, spec.counters);
    const address = (index: number) => ({
      hostname: spec.hostname,
      port: spec.ports[index % spec.ports.length],
    });
    this.#subscribers = await Promise.all(spec.subscribers.map(async (subscriberSpec) => {
      const client = await connectMqtt({
        ...address(subscriberSpec.index),
        clientId: subscriberSpec.clientId,
      });
      await subscribeMqtt(client, subscriberSpec);
      const subscriber = new Subscriber(client, {
        spec: subscriberSpec,
        counters,
        publishers: spec.publisherCount,
      });
      subscriber.run().catch(fail);
      return subscriber;
    }));
    this.#publishers = await Promise.all(spec.publishers.map(async (publisherSpec) => {
      const client = await connectMqtt({
        ...address(publisherSpec.index),
        clientId: publisherSpec.clientId,
      });
      return new Publisher(client, { spec: publisherSpec, counters, groups: spec.groups });
    }));
  }

  #finish(): void {
    for (const client of [...this.#publishers, ...this.#subscribers]) client.close();
    const reports = this.#subscribers.map((subscriber) => ({
      index: subscriber.index,
      report: subscriber.report(),
    }));
    post({
      kind: "finished",
      reports,
      latencies: this.#subscribers.flatMap((subscriber) => subscriber.latencies()),
    }, reports.flatMap(({ report }) => report.seen.map((bits) => bits.buffer)));
  }
}

const worker = new LoadWorker();
self.onmessage = (event: MessageEvent<ToWorker>) => {
  worker.handle(event.data).catch(fail);
};
