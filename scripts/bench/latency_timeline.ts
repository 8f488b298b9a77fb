/**
 * A latency timeline: what the latency cases of the benchmark measure, message by message, lined up
 * with what the broker did at the time. Each "arm" is one broker pinned to CPU 0 (this process pins
 * itself to CPU 1) with its own subscriber and its own publisher paced at `--rate` messages per
 * second (5 per 1 ms tick at 5,000), every message's send time and latency recorded. Several arms
 * run side by side, their publishers writing in the same ticks (in turn, the first one rotating),
 * so whatever else runs on the machine delays them at the same moments: on a shared machine that
 * compares brokers or settings far better than runs one after the other.
 *
 * An arm is `mosquitto`, `perch`, or `perch+FLAG+FLAG...` (V8 flags added to those of `deno task
 * start`; `perch=FLAG+...` replaces them); a Perch arm ending in `@niceN` has every thread but the
 * main one reniced to N once it listens (an experiment: V8's workers yielding the shared CPU). Perch runs with `--trace-gc-nvp --trace-opt` added, its
 * output line-buffered (`stdbuf -oL`) and each line stamped when it arrives, so every slow message
 * can be put next to the scavenges (with V8's own breakdown of each pause) and the JIT compile jobs
 * (which run on a V8 worker thread sharing the broker's CPU) around it. Each broker's threads are
 * read from `/proc/<pid>/task/<tid>/{stat,schedstat}` before and after the window: CPU time per
 * thread and how long each waited, runnable, for a CPU.
 *
 * ```sh
 * deno run -A scripts/bench/latency_timeline.ts --arms perch,mosquitto --qos 1 --seconds 20
 * deno run -A scripts/bench/latency_timeline.ts --arms perch,perch+--single-threaded-gc --qos 1
 * ```
 *
 * `--deno-flags="..."` adds `deno run` flags to every Perch arm (e.g. `--inspect=127.0.0.1:9339`
 * for a heap or CPU profile taken from outside while it runs). `--out PREFIX` writes every sample (`PREFIX-<arm>.txt`: ms since the window opened, latency ms)
 * and every broker line (`PREFIX-<arm>.broker`, stamped the same way).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { encodeConnect, encodeSubscribe, PacketType } from "./mqtt_packets.ts";
import { PacketReader } from "./mqtt_reader.ts";
import { taskV8Flags } from "../deno_tasks.ts";
import { mosquittoConfig } from "./brokers/mosquitto.ts";
import { REPO_ROOT } from "./paths.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    arms: { type: "string", default: "perch" },
    qos: { type: "string", default: "0" },
    rate: { type: "string", default: "5000" },
    seconds: { type: "string", default: "20" },
    warmup: { type: "string", default: "5" },
    out: { type: "string" },
    "deno-flags": { type: "string", default: "" },
    top: { type: "string", default: "10" },
    "no-pin": { type: "boolean", default: false },
  },
});
const qos = Number(args.qos);
const rate = Number(args.rate);
const seconds = Number(args.seconds);
const warmupSeconds = Number(args.warmup);
const pin = !args["no-pin"];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A line a broker printed, stamped on arrival with this process's clock. */
interface BrokerLine {
  at: number;
  text: string;
}

interface ThreadSample {
  name: string;
  cpuTicks: number;
  runNs: number;
  waitNs: number;
  slices: number;
}

/** One broker and its two clients. */
interface Arm {
  name: string;
  child: Deno.ChildProcess;
  lines: BrokerLine[];
  configDir?: string;
  pub: Deno.TcpConn;
  sub: Deno.TcpConn;
  packet: Uint8Array;
  view: DataView;
  idOffset: number;
  payloadOffset: number;
  packetId: number;
  sentAt: Float64Array;
  latency: Float64Array;
  received: number;
  before?: Map<string, ThreadSample>;
  after?: Map<string, ThreadSample>;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

async function collect(stream: ReadableStream<Uint8Array>, lines: BrokerLine[]): Promise<void> {
  let rest = "";
  for await (const chunk of stream) {
    const at = performance.now();
    rest += decoder.decode(chunk, { stream: true });
    const parts = rest.split("\n");
    rest = parts.pop()!;
    for (const text of parts) lines.push({ at, text });
  }
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

function sampleThreads(pid: number): Map<string, ThreadSample> {
  const out = new Map<string, ThreadSample>();
  try {
    for (const entry of Deno.readDirSync(`/proc/${pid}/task`)) {
      try {
        const base = `/proc/${pid}/task/${entry.name}`;
        const stat = Deno.readTextFileSync(`${base}/stat`);
        const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        const [runNs, waitNs, slices] = Deno.readTextFileSync(`${base}/schedstat`).trim()
          .split(" ").map(Number);
        out.set(entry.name, {
          name,
          cpuTicks: Number(fields[11]) + Number(fields[12]),
          runNs,
          waitNs,
          slices,
        });
      } catch {
        // The thread ended.
      }
    }
  } catch {
    // The process ended.
  }
  return out;
}

async function connect(port: number, clientId: string): Promise<Deno.TcpConn> {
  for (let attempt = 0;; attempt++) {
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.setNoDelay(true);
      await conn.write(encodeConnect(clientId));
      return conn;
    } catch (error) {
      if (attempt > 600) throw error;
      await sleep(50);
    }
  }
}

/**
 * Gives every thread of the process but the main one (V8's workers, the runtime's helpers) the
 * nice value `nice`: an experiment in letting the main thread win a shared CPU from them.
 */
async function reniceWorkers(pid: number, nice: string): Promise<void> {
  const tids = [...Deno.readDirSync(`/proc/${pid}/task`)].map((entry) => entry.name)
    .filter((tid) => tid !== String(pid));
  const { success } = await new Deno.Command("renice", { args: ["-n", nice, "-p", ...tids] })
    .output();
  const names = tids.map((tid) => Deno.readTextFileSync(`/proc/${pid}/task/${tid}/comm`).trim());
  console.log(`reniced to ${nice} (${success ? "ok" : "failed"}): ${names.join(", ")}`);
}

async function startArm(name: string, index: number): Promise<Arm> {
  const taskset = pin ? ["taskset", "-c", "0"] : [];
  const port = freePort();
  let argv: string[];
  let env: Record<string, string> = {};
  let configDir: string | undefined;
  if (name === "mosquitto") {
    configDir = await Deno.makeTempDir({ prefix: "latency-timeline-" });
    await Deno.chmod(configDir, 0o755);
    const config = `${configDir}/mosquitto.conf`;
    await Deno.writeTextFile(config, mosquittoConfig(["127.0.0.1"], port, false), { mode: 0o644 });
    argv = [...taskset, "mosquitto", "-c", config];
  } else if (name.startsWith("perch")) {
    const replace = name.startsWith("perch=");
    const spec = name.replace(/@nice-?\d+$/, "");
    const added = spec.slice(replace ? 6 : 5).split("+").filter((flag) => flag !== "");
    const base = replace
      ? []
      : [(await taskV8Flags("start"))[0]?.slice("--v8-flags=".length) ?? ""];
    const v8 = [...base, ...added, "--trace-gc-nvp", "--trace-opt"].filter((f) => f !== "");
    // V8 prints its traces with C stdio, block-buffered into a pipe; line-buffered, each line
    // arrives when it is printed and can be stamped with this process's clock.
    argv = [
      ...taskset,
      "stdbuf",
      "-oL",
      Deno.execPath(),
      "run",
      "-A",
      `--v8-flags=${v8.join(",")}`,
      ...args["deno-flags"].split(" ").filter((flag) => flag !== ""),
      "src/main.ts",
    ];
    env = {
      PERCH_LISTENERS__TCP__HOST: "127.0.0.1",
      PERCH_LISTENERS__TCP__PORT: String(port),
      PERCH_SYS__ENABLED: "false",
      PERCH_ADMIN__ENABLED: "false",
      PERCH_LOG__LEVEL: "warn",
    };
  } else throw new Error(`Unknown arm ${name}: mosquitto, perch or perch+V8FLAG+...`);
  console.log(`arm ${index} ${name}: ${argv.join(" ")}`);
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    cwd: REPO_ROOT,
    env,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: BrokerLine[] = [];
  collect(child.stdout, lines);
  collect(child.stderr, lines);
  const sub = await connect(port, `timeline-sub-${index}`);
  const nice = name.match(/@nice(-?\d+)$/)?.[1];
  if (nice !== undefined) await reniceWorkers(child.pid, nice);
  const pub = await connect(port, `timeline-pub-${index}`);

  // PUBLISH with a 16-byte payload: float64 send time, uint32 sequence, 4 spare bytes.
  const topic = encoder.encode(`bench/latency/${index}`);
  const body = 2 + topic.length + (qos > 0 ? 2 : 0) + 16;
  const packet = new Uint8Array(2 + body);
  packet[0] = (PacketType.publish << 4) | (qos << 1);
  packet[1] = body;
  packet[3] = topic.length;
  packet.set(topic, 4);
  const capacity = Math.ceil(rate * (seconds + warmupSeconds + 5));
  const arm: Arm = {
    name,
    child,
    lines,
    configDir,
    pub,
    sub,
    packet,
    view: new DataView(packet.buffer),
    idOffset: 4 + topic.length,
    payloadOffset: 4 + topic.length + (qos > 0 ? 2 : 0),
    packetId: 0,
    sentAt: new Float64Array(capacity),
    latency: new Float64Array(capacity).fill(NaN),
    received: 0,
  };
  let subscribed = false;
  const puback = new Uint8Array([PacketType.puback << 4, 2, 0, 0]);
  const subReader = new PacketReader();
  (async () => {
    while (true) {
      const n = await subReader.readFrom(sub, (header, bytes, view, start) => {
        const type = header >> 4;
        if (type === PacketType.suback) subscribed = true;
        else if (type === PacketType.publish) {
          const now = performance.now();
          const topicLength = view.getUint16(start);
          let offset = start + 2 + topicLength;
          if (((header >> 1) & 3) > 0) {
            puback[2] = bytes[offset];
            puback[3] = bytes[offset + 1];
            sub.write(puback.slice()).catch(() => {});
            offset += 2;
          }
          arm.latency[view.getUint32(offset + 8)] = now - view.getFloat64(offset);
          arm.received++;
        }
      });
      if (n === null) break;
    }
  })().catch(() => {});
  const pubReader = new PacketReader();
  (async () => {
    while ((await pubReader.readFrom(pub, () => {})) !== null) {
      // CONNACK and PUBACKs are read and dropped.
    }
  })().catch(() => {});
  await sub.write(encodeSubscribe(`bench/latency/${index}`, qos));
  while (!subscribed) await sleep(10);
  return arm;
}

if (pin) {
  await new Deno.Command("taskset", { args: ["-a", "-c", "-p", "1", String(Deno.pid)] }).output();
}
const arms: Arm[] = [];
for (const [index, name] of args.arms.split(",").entries()) arms.push(await startArm(name, index));

// ---- the paced publishers ----------------------------------------------------------------------
const startedAt = performance.now();
const windowStart = startedAt + warmupSeconds * 1000;
const windowEnd = windowStart + seconds * 1000;
let sent = 0;
let sampled = false;
let tick = 0;
console.log(
  `warming up ${warmupSeconds} s, then measuring ${seconds} s at ${rate} msg/s QoS ${qos} per arm`,
);
while (true) {
  const now = performance.now();
  if (!sampled && now >= windowStart) {
    for (const arm of arms) arm.before = sampleThreads(arm.child.pid);
    sampled = true;
  }
  if (now >= windowEnd) break;
  const due = Math.min(arms[0].sentAt.length, Math.floor((now - startedAt) * rate / 1000));
  const first = tick++ % arms.length;
  while (sent < due) {
    for (let k = 0; k < arms.length; k++) {
      const arm = arms[(first + k) % arms.length];
      if (qos > 0) {
        arm.packetId = arm.packetId === 65535 ? 1 : arm.packetId + 1;
        arm.view.setUint16(arm.idOffset, arm.packetId);
      }
      arm.view.setUint32(arm.payloadOffset + 8, sent);
      const at = performance.now();
      arm.view.setFloat64(arm.payloadOffset, at);
      arm.sentAt[sent] = at;
      try {
        await arm.pub.write(arm.packet);
      } catch (error) {
        console.error(`${arm.name} publisher: ${error}; the broker's last lines:`);
        for (const line of arm.lines.slice(-20)) console.error(line.text);
        Deno.exit(1);
      }
    }
    sent++;
  }
  await sleep(1);
}
for (const arm of arms) arm.after = sampleThreads(arm.child.pid);
const deadline = performance.now() + 5000;
while (arms.some((arm) => arm.received < sent) && performance.now() < deadline) await sleep(10);
await sleep(200);

// ---- report ------------------------------------------------------------------------------------
interface Sample {
  at: number;
  ms: number;
}
interface Interval {
  start: number;
  end: number;
  text: string;
}
const quantile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];

/** Scavenges and mark-compacts from `--trace-gc-nvp` lines: [end - pause, end]. */
function gcIntervals(
  lines: BrokerLine[],
): (Interval & { gc: Record<string, number>; scavenge: boolean })[] {
  const out: (Interval & { gc: Record<string, number>; scavenge: boolean })[] = [];
  for (const line of lines) {
    const json = line.text.indexOf("GC: {");
    if (json < 0) continue;
    try {
      const gc = JSON.parse(line.text.slice(json + 4));
      const kind = gc.gc === "s" ? "scavenge" : gc.gc === "mc" ? "mark-compact" : gc.gc;
      const sweep = gc["scavenge.sweep_array_buffers"] ?? 0;
      const parallel = gc["scavenge.parallel"] ?? 0;
      out.push({
        start: line.at - gc.pause,
        end: line.at,
        scavenge: gc.gc === "s",
        text: `${kind} ${gc.pause.toFixed(2)} ms (parallel ${parallel.toFixed(2)}, background ${
          (gc["background.scavenge.parallel"] ?? 0).toFixed(2)
        }, array buffers ${sweep.toFixed(2)})`,
        gc,
      });
    } catch {
      // A line cut short.
    }
  }
  return out;
}

/** JIT compile jobs from `--trace-opt`: from "compiling method" to "completed compiling". */
function compileIntervals(lines: BrokerLine[]): Interval[] {
  const out: Interval[] = [];
  const open = new Map<string, number>();
  for (const line of lines) {
    const started = line.text.match(/\[compiling method (0x[0-9a-f]+)/);
    const done = line.text.match(/\[completed compiling (0x[0-9a-f]+)/);
    if (started) open.set(started[1], line.at);
    else if (done && open.has(done[1])) {
      const name = line.text.match(/<JSFunction ([^ >]*)/)?.[1] || "(anonymous)";
      const target = line.text.match(/target (\w+)/)?.[1] ?? "";
      const took = line.text.match(/took [\d.]+, ([\d.]+), [\d.]+ ms/)?.[1] ?? "?";
      out.push({ start: open.get(done[1])!, end: line.at, text: `${target} ${name} ${took} ms` });
      open.delete(done[1]);
    }
  }
  return out;
}

const inWindow = (i: Interval) => i.end >= windowStart && i.start < windowEnd;
const overlaps = (i: Interval, from: number, to: number) => i.start <= to && i.end >= from;

for (const arm of arms) {
  const samples: Sample[] = [];
  let lost = 0;
  for (let i = 0; i < sent; i++) {
    if (arm.sentAt[i] < windowStart || arm.sentAt[i] >= windowEnd) continue;
    if (Number.isNaN(arm.latency[i])) lost++;
    else samples.push({ at: arm.sentAt[i], ms: arm.latency[i] });
  }
  const sorted = samples.map((s) => s.ms).sort((a, b) => a - b);
  const p99 = quantile(sorted, 0.99);
  console.log(`\n== ${arm.name}`);
  console.log(
    `${samples.length} samples, ${lost} lost; p50 ${quantile(sorted, 0.5).toFixed(3)} p90 ${
      quantile(sorted, 0.9).toFixed(3)
    } p99 ${p99.toFixed(3)} p99.9 ${quantile(sorted, 0.999).toFixed(3)} max ${
      sorted[sorted.length - 1].toFixed(3)
    } ms`,
  );
  console.log("thread            cpu ms   ran ms  waited ms  slices");
  for (const [tid, end] of arm.after!) {
    const start = arm.before?.get(tid) ?? { cpuTicks: 0, runNs: 0, waitNs: 0, slices: 0 };
    const run = (end.runNs - start.runNs) / 1e6;
    const slices = end.slices - start.slices;
    if (run < 1 && slices < 5) continue;
    console.log(
      `${end.name.padEnd(16)} ${String((end.cpuTicks - start.cpuTicks) * 10).padStart(7)} ${
        run.toFixed(1).padStart(8)
      } ${((end.waitNs - start.waitNs) / 1e6).toFixed(1).padStart(10)} ${
        String(slices).padStart(7)
      }`,
    );
  }
  const gcs = gcIntervals(arm.lines).filter(inWindow);
  const compiles = compileIntervals(arm.lines).filter(inWindow);
  if (gcs.length > 0) {
    const pauses = gcs.map((g) => g.gc.pause).sort((a, b) => a - b);
    const sum = (key: string) => gcs.reduce((total, g) => total + (g.gc[key] ?? 0), 0);
    console.log(
      `GC pauses: ${gcs.length} (${gcs.filter((g) => g.scavenge).length} scavenges), median ${
        quantile(pauses, 0.5).toFixed(2)
      } p90 ${quantile(pauses, 0.9).toFixed(2)} max ${pauses[pauses.length - 1].toFixed(2)} total ${
        sum("pause").toFixed(1)
      } ms, of which parallel phase ${sum("scavenge.parallel").toFixed(1)}, array-buffer sweeping ${
        sum("scavenge.sweep_array_buffers").toFixed(1)
      }; allocated ${(sum("allocated") / 1e6).toFixed(1)} MB (${
        (sum("allocated") / Math.max(1, samples.length)).toFixed(0)
      } B per message)`,
    );
  }
  if (arm.name.startsWith("perch")) {
    console.log(
      `JIT compile jobs: ${compiles.length}, ${
        compiles.reduce((total, c) => total + (Number(c.text.split(" ").at(-2)) || 0), 0).toFixed(1)
      } ms of compiling`,
    );
  }
  // The tail: messages above the p99, and what was going on while they were in flight.
  const tail = samples.filter((s) => s.ms > p99);
  const near = (list: Interval[], s: Sample) => list.some((i) => overlaps(i, s.at, s.at + s.ms));
  const withGc = tail.filter((s) => near(gcs, s)).length;
  const withCompile = tail.filter((s) => near(compiles, s)).length;
  // The same for every message: how often a message meets a GC pause or a compile job at all.
  const share = (count: number, of: number) => `${(100 * count / Math.max(1, of)).toFixed(1)}%`;
  const allGc = samples.filter((s) => near(gcs, s)).length;
  const allCompile = samples.filter((s) => near(compiles, s)).length;
  console.log(
    `tail: ${tail.length} messages above the p99; in flight during a GC pause ${
      share(withGc, tail.length)
    } (of all messages ${share(allGc, samples.length)}), during a compile job ${
      share(withCompile, tail.length)
    } (of all ${share(allCompile, samples.length)})`,
  );
  const episodes: { start: number; end: number; count: number; worst: number }[] = [];
  for (const s of tail) {
    const last = episodes[episodes.length - 1];
    if (last !== undefined && s.at - last.end < 5) {
      last.end = s.at;
      last.count++;
      last.worst = Math.max(last.worst, s.ms);
    } else episodes.push({ start: s.at, end: s.at, count: 1, worst: s.ms });
  }
  const top = [...episodes].sort((a, b) => b.worst - a.worst).slice(0, Number(args.top));
  console.log(`${episodes.length} episodes (slow messages less than 5 ms apart), the worst:`);
  for (const e of top.sort((a, b) => a.start - b.start)) {
    const from = e.start;
    const to = e.end + e.worst;
    const notes = [...gcs, ...compiles].filter((i) => overlaps(i, from, to)).map((i) => i.text);
    console.log(
      `  t=${((e.start - windowStart) / 1000).toFixed(3)} s  ${e.count} msgs  worst ${
        e.worst.toFixed(2)
      } ms${notes.length ? "  " + notes.join(" | ") : ""}`,
    );
  }
  if (args.out !== undefined) {
    const file = `${args.out}-${arms.indexOf(arm)}`;
    await Deno.writeTextFile(
      `${file}.txt`,
      samples.map((s) => `${(s.at - windowStart).toFixed(3)} ${s.ms.toFixed(4)}`).join("\n") + "\n",
    );
    await Deno.writeTextFile(
      `${file}.broker`,
      arm.lines.map((l) => `${(l.at - windowStart).toFixed(3)} ${l.text}`).join("\n") + "\n",
    );
  }
}

for (const arm of arms) {
  arm.sub.close();
  arm.pub.close();
  arm.child.kill("SIGTERM");
  await arm.child.status;
  if (arm.configDir !== undefined) await Deno.remove(arm.configDir, { recursive: true });
}
Deno.exit(0);
