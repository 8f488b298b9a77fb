/**
 * The configuration, mapped onto the options of the parts `main.ts` wires together. Kept apart
 * from `main.ts` so the public surface (`src/mod.ts`) can export it without importing the admin
 * API that `main.ts` serves (routes/ imports `src/mod.ts`: that would be a cycle).
 *
 * @module
 */

import denoConfig from "../deno.json" with { type: "json" };
import type { BrokerOptions } from "./broker/options.ts";
import type { Config } from "./config/mod.ts";
import type { ProxyProtocolOptions, WebSocketOptions } from "./transport/sockets.ts";
import { addressMatcher } from "./util/address_match.ts";

/** The broker's version, from deno.json. */
export const VERSION: string = denoConfig.version;

/** Maps the validated configuration onto the engine's options. */
export function toBrokerOptions(config: Config): BrokerOptions {
  return {
    ...config.mqtt,
    ...config.limits,
    nodeId: config.node.id,
    sysInterval: config.sys.enabled ? config.sys.interval : 0,
    backboneTimeout: config.backbone.timeout,
    legacyConnectInfo: config.agent.legacyConnectInfo,
  };
}

/** The PROXY protocol settings of the TCP listener, or undefined when it is off. */
export function proxyProtocolOptions(config: Config): ProxyProtocolOptions | undefined {
  const proxy = config.listeners.tcp.proxyProtocol;
  if (!proxy.enabled) return undefined;
  return {
    trustedSources: proxy.trustedSources.length > 0
      ? addressMatcher(proxy.trustedSources)
      : undefined,
    timeout: proxy.timeout,
  };
}

/** How the WebSocket listener (and the admin port, when it serves MQTT too) accepts clients. */
export function webSocketOptions(
  listener: {
    path: string;
    trustedProxies: string[];
    proxyHeader: string;
    allowedOrigins: string[];
  },
): WebSocketOptions {
  return {
    path: listener.path,
    allowedOrigins: listener.allowedOrigins,
    trustedProxies: listener.trustedProxies.length > 0
      ? addressMatcher(listener.trustedProxies)
      : undefined,
    proxyHeader: listener.proxyHeader,
  };
}
