/**
 * Builds the notifier the configuration asks for: a queue per configured sink (`notify.webhook`,
 * `notify.grpc`, `notify.nats`), none when none is configured. Nothing here connects or waits
 * for a receiver, so a sink that is down cannot stop the broker from starting.
 *
 * @module
 */

import { readFile } from "node:fs/promises";
import type { Config } from "../config/mod.ts";
import type { Clock } from "../util/clock.ts";
import type { Logger } from "../util/logger.ts";
import { GrpcSender } from "./grpc.ts";
import { NatsSender, type NatsSinkOptions } from "./nats.ts";
import { Notifier } from "./notifier.ts";
import { type Sender, SinkQueue } from "./queue.ts";
import { WebhookSender } from "./webhook.ts";

/** What the notifier runs with. */
export interface NotifierDeps {
  clock: Clock;
  logger: Logger;
}

/** The notifier of `config.notify` (it has no sinks when none is configured). */
export async function createNotifier(config: Config, deps: NotifierDeps): Promise<Notifier> {
  const { webhook, grpc, nats } = config.notify;
  const sinks: SinkQueue[] = [];
  const add = (name: string, sender: Sender, settings: typeof webhook) => {
    sinks.push(new SinkQueue(name, sender, { ...settings, ...deps }));
    deps.logger.info("event notifications on", { sink: name });
  };
  if (webhook.url !== undefined) {
    add(
      "webhook",
      new WebhookSender({ url: webhook.url, secret: webhook.secret, timeoutMs: webhook.timeout }),
      webhook,
    );
  }
  if (grpc.server !== undefined) {
    const tls = grpc.tls;
    const read = (path: string | undefined) => path === undefined ? undefined : readFile(path);
    const [ca, cert, key] = await Promise.all([read(tls.ca), read(tls.cert), read(tls.key)]);
    add(
      "grpc",
      new GrpcSender({
        server: grpc.server,
        tls: tls.enabled ? { ca, cert, key } : undefined,
        timeoutMs: grpc.timeout,
      }),
      grpc,
    );
  }
  if (nats.enabled) add("nats", new NatsSender(await natsSinkOptions(config)), nats);
  return new Notifier(sinks);
}

/**
 * The NATS sink's connection: its own servers and credentials, or the backbone's (servers,
 * credentials, TLS and prefix) when it names none.
 */
async function natsSinkOptions(config: Config): Promise<NatsSinkOptions> {
  const nats = config.notify.nats;
  const base = {
    timeoutMs: nats.timeout,
    name: `perch ${config.node.id} notifications`,
  };
  if (nats.servers !== undefined) {
    return {
      ...base,
      servers: nats.servers,
      prefix: nats.prefix ?? (config.backbone.kind === "nats" ? config.backbone.prefix : "perch"),
      user: nats.user,
      password: nats.password,
      token: nats.token,
    };
  }
  // The schema lets `servers` be omitted only with the NATS backbone.
  const backbone = config.backbone as Extract<Config["backbone"], { kind: "nats" }>;
  return {
    ...base,
    servers: backbone.servers,
    prefix: nats.prefix ?? backbone.prefix,
    user: backbone.user,
    password: backbone.password,
    token: backbone.token,
    nkeySeed: backbone.nkeySeedFile === undefined
      ? undefined
      : (await readFile(backbone.nkeySeedFile, "utf8")).trim(),
    creds: backbone.credsFile === undefined ? undefined : await readFile(backbone.credsFile),
    tls: backbone.tls,
  };
}
