/**
 * The admin API across nodes: what one node asks another (`nodes.request` on the backbone, each
 * bounded by {@linkcode NODE_ANSWER_TIMEOUT_MS}) and what it serves to them. With the memory
 * backbone the node list holds this node alone, which is always answered in this process: one node
 * runs the same code as a cluster.
 *
 * @module
 */

import type { Broker } from "../src/mod.ts";

/** Longest wait for another node's answer; past it the node is reported as not answering. */
export const NODE_ANSWER_TIMEOUT_MS = 2_000;

/** The requests one node's admin API sends another. */
export const NodeMethod = {
  /** This node's description (`/api/v1/nodes`). */
  describe: "admin.node",
  /** The sorted ids of this node's clients matching a search, and how many match. */
  clientIds: "admin.clients.ids",
  /** The listed views of some of this node's clients. */
  clientViews: "admin.clients.views",
  /** One client's details with its session. */
  client: "admin.client",
  /** Disconnects one client. */
  kick: "admin.client.kick",
} as const;

/** What a node answered, or that it did not. */
export type NodeAnswer<T> = { node: string; value: T } | { node: string; missing: true };

/** Asks `node` (this one in this process, another through the backbone) within the timeout. */
export async function askNode<T>(
  broker: Broker,
  node: string,
  method: string,
  body: unknown,
  local: () => T | Promise<T>,
): Promise<NodeAnswer<T>> {
  if (node === broker.options.nodeId) return { node, value: await local() };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), NODE_ANSWER_TIMEOUT_MS);
  });
  try {
    const answer = await Promise.race([
      broker.backbone.nodes.request(node, method, body).then((value) => ({ value: value as T })),
      timeout,
    ]);
    return answer === undefined ? { node, missing: true } : { node, value: answer.value };
  } catch {
    // Counted and logged as a backbone failure; the caller names the node as missing.
    return { node, missing: true };
  } finally {
    clearTimeout(timer);
  }
}

/** The ids of every node the backbone knows, this one included, in order. */
export async function nodeIds(broker: Broker): Promise<string[]> {
  const ids = new Set((await broker.backbone.nodes.list()).map((node) => node.id));
  ids.add(broker.options.nodeId);
  return [...ids].sort();
}
