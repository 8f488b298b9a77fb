/**
 * Joins the authentication chain and the ACL into the broker's policy hooks.
 *
 * @module
 */

import type { BrokerHooks, ClientInfo, PublishRequest, SubscribeRequest } from "../hooks/hooks.ts";
import type { Acl } from "./acl.ts";
import type { AuthChain } from "./chain.ts";

/** The parts the policy hooks are built from. */
export interface SecurityParts {
  chain: AuthChain;
  acl: Acl;
}

/**
 * Policy hooks: `authenticate` runs the chain; `authorizePublish`, `authorizeSubscribe` and
 * `authorizeRead` ask the ACL (synchronously: no Promise on the publish and fan-out paths).
 *
 * @returns Hooks to merge into the broker's hooks
 */
export function createSecurityHooks(parts: SecurityParts): BrokerHooks {
  const { chain, acl } = parts;
  return {
    authenticate: (request) => chain.authenticate(request),
    authorizePublish: (client: ClientInfo, request: PublishRequest) =>
      acl.canPublish(client, request.topic),
    authorizeSubscribe: (client: ClientInfo, request: SubscribeRequest) =>
      acl.canSubscribe(client, request.filter),
    authorizeRead: (client: ClientInfo, topic: string) => acl.canRead(client, topic),
  };
}
