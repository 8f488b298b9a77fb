/**
 * Where a running broker allocates: V8's sampling heap profiler, through the inspector of a Perch
 * started with `--inspect`, for a few seconds of load. Prints the bytes allocated in that time
 * (collected ones included) and the allocation sites that took the most, each with its two
 * callers. Divide the total by the messages of those seconds for bytes per message.
 *
 * ```sh
 * deno task bench --brokers perch --cases fan-in/qos1/16B --rounds 1 --duration 20 \
 *   "--perch-flags=--inspect=127.0.0.1:9339" &
 * sleep 10 && deno run -A scripts/heap_sample.ts --port 9339 --seconds 6
 * ```
 *
 * V8 inlines hot functions: a site then shows as the function it was inlined into. To see each
 * function's own allocations, start Perch with
 * `--v8-flags=--max-semi-space-size=4,--no-turbo-inlining,--no-maglev-inlining` as well.
 *
 * @module
 */

import { parseArgs } from "node:util";

/** A node of the sampling profile's call tree. */
interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

/** One allocation site with its callers, and the bytes allocated there. */
export interface AllocationSite {
  stack: string;
  bytes: number;
}

/** Bytes allocated in a sampling profile, in all and by site (the largest first). */
export function allocationSites(head: ProfileNode): { total: number; sites: AllocationSite[] } {
  const bytes = new Map<string, number>();
  let total = 0;
  const walk = (node: ProfileNode, callers: string[]) => {
    const frame = node.callFrame;
    const file = frame.url.replace(/^.*\/(src|ext)\//, "$1/").replace(/^file:\/\//, "");
    const here = [
      `${frame.functionName || "(anonymous)"} ${file}:${frame.lineNumber + 1}`,
      ...callers,
    ];
    if (node.selfSize > 0) {
      total += node.selfSize;
      const stack = here.slice(0, 3).join(" <- ");
      bytes.set(stack, (bytes.get(stack) ?? 0) + node.selfSize);
    }
    for (const child of node.children) walk(child, here);
  };
  walk(head, []);
  const sites = [...bytes].map(([stack, size]) => ({ stack, bytes: size }));
  return { total, sites: sites.sort((a, b) => b.bytes - a.bytes) };
}

/** Samples the heap of the process whose inspector listens on `port` for `seconds`. */
export async function sampleHeap(port: number, seconds: number): Promise<ProfileNode> {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json() as {
    webSocketDebuggerUrl: string;
  }[];
  if (targets.length === 0) throw new Error(`no inspector target on port ${port}`);
  const socket = new WebSocket(targets[0].webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = () => reject(new Error(`cannot reach the inspector on port ${port}`));
  });
  const answers = new Map<number, (result: unknown) => void>();
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    answers.get(message.id)?.(message.result);
    answers.delete(message.id);
  };
  let lastId = 0;
  const call = (method: string, params: Record<string, unknown> = {}) =>
    new Promise<unknown>((resolve) => {
      const id = ++lastId;
      answers.set(id, resolve);
      socket.send(JSON.stringify({ id, method, params }));
    });
  try {
    await call("HeapProfiler.enable");
    await call("HeapProfiler.startSampling", {
      samplingInterval: 4096,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    const result = await call("HeapProfiler.stopSampling") as { profile: { head: ProfileNode } };
    return result.profile.head;
  } finally {
    socket.close();
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      port: { type: "string", default: "9229" },
      seconds: { type: "string", default: "5" },
      top: { type: "string", default: "25" },
    },
  });
  const { total, sites } = allocationSites(
    await sampleHeap(Number(values.port), Number(values.seconds)),
  );
  console.log(`${(total / 2 ** 20).toFixed(1)} MiB allocated in ${values.seconds} s`);
  for (const site of sites.slice(0, Number(values.top))) {
    console.log(`${(100 * site.bytes / total).toFixed(1).padStart(5)}%  ${site.stack}`);
  }
}
