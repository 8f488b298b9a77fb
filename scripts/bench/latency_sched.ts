/**
 * Where the latency cases' slow messages waited, from the kernel's side: runs the bench's latency
 * case under `perf record` (scheduler and socket tracepoints, whole machine) and, for each broker
 * measured, looks at the two reads a message needs after it is written: the broker reading the
 * publisher's data and the load generator reading the subscriber's. For each, how long data sat in
 * the socket before the reader took it, and, for every wait over `--slow` ms, what the reading thread
 * was doing meanwhile: running (busy with something else), runnable but waiting for its CPU (and
 * which tasks had that CPU: its own process's threads or others), or asleep with the data there (a
 * missed wake-up). It also gives the delay from a wake-up to running, split by whether the CPU was
 * idle (a halted vCPU's wake-up cost) or busy. Unlike the timeline's `/proc` totals, this places
 * every wait, so a tail can be told apart as the broker's own work, its own helper threads, or other
 * load on a shared machine.
 *
 * ```sh
 * deno run -A scripts/bench/latency_sched.ts --brokers perch,perch-bun,mosquitto --qos 0
 * deno run -A scripts/bench/latency_sched.ts --brokers perch --qos 1 --rounds 3 --keep /tmp/ls
 * ```
 *
 * Needs `perf` and access to the tracepoints (root). `--warmup` and `--duration` (seconds, default
 * 5 and 5) are the bench's latency warm-up and window; the trace covers both, and the first `--skip`
 * seconds of each broker's run (default: the warm-up) are left out.
 *
 * `--isolate` (a diagnostic, nothing Perch or the bench does otherwise) gives each broker's main
 * thread and the bench's load workers `SCHED_FIFO` priority 10 while they run (`chrt`): other
 * load on the machine then no longer delays them, while every other thread of the broker (V8's
 * worker, the runtime's) is scheduled as usual. It shows what a broker's p99 is when its main
 * thread gets its CPU at once. Bun's main thread waits on its helper threads at times, which then
 * never run: Perch on Bun stalls for up to a second under it.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { REPO_ROOT } from "./paths.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    brokers: { type: "string", default: "perch,perch-bun,mosquitto" },
    qos: { type: "string", default: "0" },
    rounds: { type: "string", default: "1" },
    slow: { type: "string", default: "1" },
    warmup: { type: "string", default: "5" },
    duration: { type: "string", default: "5" },
    skip: { type: "string" },
    keep: { type: "string" },
    isolate: { type: "boolean", default: false },
  },
});
const slowMs = Number(args.slow);
const skipMs = Number(args.skip ?? args.warmup) * 1000;
const dir = args.keep ?? await Deno.makeTempDir({ prefix: "latency-sched-" });
await Deno.mkdir(dir, { recursive: true });

// ---- record ------------------------------------------------------------------------------------
const EVENTS = [
  "sched:sched_switch",
  "sched:sched_wakeup",
  "sched:sched_process_fork",
  "sched:sched_process_exec",
  "sock:sock_recv_length",
  "tcp:tcp_probe",
];
const perf = new Deno.Command("perf", {
  args: ["record", "-a", "-q", "-o", `${dir}/perf.data`, "-e", EVENTS.join(",")],
  stdout: "null",
  stderr: "piped",
}).spawn();
await new Promise((resolve) => setTimeout(resolve, 1000));
const bench = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "-A",
    "scripts/bench.ts",
    "--brokers",
    args.brokers,
    "--cases",
    `latency/qos${args.qos}`,
    "--latency-rounds",
    args.rounds,
    "--latency-warmup",
    args.warmup,
    "--duration",
    args.duration,
    "--out",
    `${dir}/bench`,
  ],
  cwd: REPO_ROOT,
  stdout: "piped",
  stderr: "null",
}).spawn();
const benchPid = bench.pid;
const isolating = args.isolate ? isolate(benchPid, bench.status) : Promise.resolve();
const benchOut = new TextDecoder().decode((await bench.output()).stdout);
await isolating;
perf.kill("SIGINT");
await perf.status;
const rounds = benchOut.split("\n").filter((line) => /^round \d+\/\d+ +latency/.test(line));
for (const line of rounds) console.log(line.replace(/, delivered.*/, ""));

/**
 * Until `done`, gives `SCHED_FIFO` 10 to the main thread of every child process of the bench (the
 * brokers: `taskset` runs them in place) and to the bench's worker threads.
 */
async function isolate(pid: number, done: Promise<unknown>): Promise<void> {
  let finished = false;
  done.then(() => finished = true);
  const raised = new Set<number>();
  const raise = async (tid: number) => {
    raised.add(tid);
    await new Deno.Command("chrt", { args: ["-f", "-p", "10", String(tid)], stderr: "null" })
      .output();
  };
  while (!finished) {
    try {
      for (const entry of Deno.readDirSync(`/proc/${pid}/task`)) {
        const tid = Number(entry.name);
        if (raised.has(tid)) continue;
        const comm = Deno.readTextFileSync(`/proc/${pid}/task/${tid}/comm`).trim();
        if (comm.startsWith("worker-")) await raise(tid);
      }
      for (const entry of Deno.readDirSync("/proc")) {
        const child = Number(entry.name);
        if (!Number.isInteger(child) || raised.has(child)) continue;
        const stat = Deno.readTextFileSync(`/proc/${child}/stat`);
        const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
        if (parent === pid) await raise(child);
      }
    } catch {
      // A process or thread ended while being read.
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// ---- parse -------------------------------------------------------------------------------------
interface Event {
  t: number;
  pid: number;
  tid: number;
  cpu: number;
  name: string;
  rest: string;
}
const LINE = /^\s*(.+?)\s+(\d+)\/(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s+(.*)$/;
const script = new Deno.Command("perf", {
  args: ["script", "-i", `${dir}/perf.data`, "-F", "comm,pid,tid,cpu,time,event,trace"],
  stdout: "piped",
  stderr: "null",
}).spawn();
const events: Event[] = [];
let rest = "";
const decoder = new TextDecoder();
for await (const chunk of script.stdout) {
  rest += decoder.decode(chunk, { stream: true });
  const lines = rest.split("\n");
  rest = lines.pop()!;
  for (const line of lines) {
    const m = line.match(LINE);
    if (m === null) continue;
    events.push({
      t: Number(m[5]) * 1000,
      pid: Number(m[2]),
      tid: Number(m[3]),
      cpu: Number(m[4]),
      name: m[6],
      rest: m[7],
    });
  }
}
await script.status;

// Our processes: the bench and everything it started (fork events carry parent and child).
const ours = new Set([benchPid]);
const execs = new Map<number, string>();
const tgid = new Map<number, number>(); // tid -> process
for (const e of events) {
  tgid.set(e.tid, e.pid);
  if (e.name === "sched:sched_process_fork") {
    const m = e.rest.match(/ pid=(\d+) child_comm=.* child_pid=(\d+)/);
    if (m && ours.has(Number(m[1]))) ours.add(Number(m[2]));
  } else if (e.name === "sched:sched_process_exec") {
    execs.set(e.pid, e.rest.match(/filename=(\S+)/)?.[1] ?? "?");
  }
}

/** Bytes read per socket, by thread. */
const reads = new Map<number, Map<string, number>>();
for (const e of events) {
  if (e.name !== "sock:sock_recv_length" || !ours.has(e.pid)) continue;
  const sk = e.rest.match(/sk address = (\S+),/)?.[1];
  const length = Number(e.rest.match(/length = (\d+)/)?.[1] ?? 0);
  if (sk === undefined || length === 0) continue;
  const bySocket = reads.get(e.tid) ?? new Map<string, number>();
  bySocket.set(sk, (bySocket.get(sk) ?? 0) + length);
  reads.set(e.tid, bySocket);
}
const busiest = (tid: number) => [...reads.get(tid)!.entries()].sort((a, b) => b[1] - a[1])[0][0];
// Brokers: main threads of our processes other than the bench that read much; in start order.
const brokers = [...reads.keys()]
  .filter((tid) => tid === tgid.get(tid) && tgid.get(tid) !== benchPid)
  .filter((tid) => [...reads.get(tid)!.values()].reduce((a, b) => a + b, 0) > 100_000)
  .map((tid) => ({ tid, first: events.find((e) => e.tid === tid)!.t }))
  .sort((a, b) => a.first - b.first);
// Generator threads: the bench's workers, one per measurement, in start order.
const workers = [...reads.keys()]
  .filter((tid) => tgid.get(tid) === benchPid && tid !== benchPid)
  .filter((tid) => [...reads.get(tid)!.values()].reduce((a, b) => a + b, 0) > 100_000)
  .map((tid) => ({ tid, first: events.find((e) => e.tid === tid)!.t }))
  .sort((a, b) => a.first - b.first);
if (brokers.length !== rounds.length || workers.length !== rounds.length) {
  console.log(
    `found ${brokers.length} brokers and ${workers.length} generator threads for ${rounds.length} measurements; giving up`,
  );
  Deno.exit(1);
}

// ---- analyse -----------------------------------------------------------------------------------
type State = "running" | "waiting for CPU" | "asleep";

const quantile = (sorted: number[], p: number) =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
const summary = (values: number[]) => {
  const s = [...values].sort((a, b) => a - b);
  return `n ${s.length}, p50 ${quantile(s, 0.5).toFixed(3)} p90 ${
    quantile(s, 0.9).toFixed(3)
  } p99 ${quantile(s, 0.99).toFixed(3)} max ${(s.at(-1) ?? NaN).toFixed(3)} ms`;
};
const label = (tid: number, comm: string) => `${comm} (${tgid.get(tid) ?? "?"})`;

/** One reading thread over [from, to): its socket's waits, classified. */
function analyse(reader: number, socket: string, from: number, to: number, title: string): void {
  const own = tgid.get(reader);
  const arrivals: number[] = [];
  const readAt: number[] = [];
  const states: { t: number; state: State; cpu: number }[] = [];
  // Per CPU: who ran, from when (for the blame of waits).
  const runs: { cpu: number; t: number; tid: number; comm: string }[] = [];
  const wakeDelays = { idle: [] as number[], busy: [] as number[] };
  const current = new Map<number, number>();
  let wokenAt: number | undefined;
  let idleAtWake = false;
  for (const e of events) {
    if (e.t < from || e.t >= to) {
      if (e.name === "sched:sched_switch") {
        current.set(e.cpu, Number(e.rest.match(/next_pid=(\d+)/)?.[1] ?? -1));
      }
      continue;
    }
    if (e.name === "sched:sched_switch") {
      const m = e.rest.match(
        /prev_pid=(\d+) prev_prio=\d+ prev_state=(\S+) ==> next_comm=(.*) next_pid=(\d+)/,
      );
      if (m === null) continue;
      const next = Number(m[4]);
      runs.push({ cpu: e.cpu, t: e.t, tid: next, comm: m[3] });
      if (Number(m[1]) === reader) {
        const state: State = m[2].startsWith("R") ? "waiting for CPU" : "asleep";
        states.push({ t: e.t, state, cpu: e.cpu });
      }
      if (next === reader) {
        states.push({ t: e.t, state: "running", cpu: e.cpu });
        if (wokenAt !== undefined) {
          (idleAtWake ? wakeDelays.idle : wakeDelays.busy).push(e.t - wokenAt);
          wokenAt = undefined;
        }
      }
      current.set(e.cpu, next);
    } else if (e.name === "sched:sched_wakeup") {
      const m = e.rest.match(/ pid=(\d+) .*target_cpu=(\d+)/);
      if (m && Number(m[1]) === reader && wokenAt === undefined) {
        states.push({ t: e.t, state: "waiting for CPU", cpu: Number(m[2]) });
        wokenAt = e.t;
        idleAtWake = (current.get(Number(m[2])) ?? -1) === 0;
      }
    } else if (e.name === "tcp:tcp_probe") {
      if (e.rest.includes(`skaddr=${socket}`) && !/data_len=0 /.test(e.rest)) arrivals.push(e.t);
    } else if (e.name === "sock:sock_recv_length" && e.tid === reader) {
      if (e.rest.includes(socket)) readAt.push(e.t);
    }
  }
  // One wait per read that found data: from the first arrival since the previous read.
  const waits: { at: number; ms: number; read: number }[] = [];
  let k = 0;
  let lastRead = -Infinity;
  for (const at of arrivals) {
    while (k < readAt.length && readAt[k] < at) k++;
    if (k >= readAt.length) break;
    if (readAt[k] === lastRead) continue;
    lastRead = readAt[k];
    waits.push({ at, ms: readAt[k] - at, read: readAt[k] });
  }
  console.log(
    `  ${title}: data waiting in the socket, per read: ${summary(waits.map((w) => w.ms))}`,
  );
  const split: Record<State, number> = { running: 0, "waiting for CPU": 0, asleep: 0 };
  const blame = new Map<string, number>();
  let slow = 0;
  let s = 0;
  let r = 0;
  for (const wait of waits) {
    if (wait.ms <= slowMs) continue;
    slow++;
    while (s + 1 < states.length && states[s + 1].t <= wait.at) s++;
    let t = wait.at;
    let state = states[s]?.state ?? "asleep";
    for (let i = s + 1; i < states.length && states[i].t < wait.read; i++) {
      split[state] += states[i].t - t;
      t = states[i].t;
      state = states[i].state;
    }
    split[state] += wait.read - t;
    // Who held the reader's CPU while it waited for it (the brokers and workers are pinned).
    const cpu = states[s]?.cpu ?? 0;
    while (r < runs.length && runs[r].t < wait.at - 50) r++;
    const onCpu: typeof runs = [];
    for (let i = r; i < runs.length && runs[i].t < wait.read; i++) {
      if (runs[i].cpu === cpu) onCpu.push(runs[i]);
    }
    for (let i = 0; i < onCpu.length; i++) {
      const start = Math.max(onCpu[i].t, wait.at);
      const end = Math.min(onCpu[i + 1]?.t ?? wait.read, wait.read);
      if (end <= start || onCpu[i].tid === reader) continue;
      const whose = onCpu[i].tid === 0
        ? "idle"
        : tgid.get(onCpu[i].tid) === own
        ? `own thread ${onCpu[i].comm}`
        : label(onCpu[i].tid, onCpu[i].comm);
      blame.set(whose, (blame.get(whose) ?? 0) + end - start);
    }
  }
  const parts = Object.entries(split).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(", ");
  console.log(`    ${slow} waits over ${slowMs} ms, ${parts} ms`);
  const top = [...blame.entries()].sort((a, b) => b[1] - a[1]).slice(0, 6);
  console.log(
    `    its CPU meanwhile: ${top.map(([k, v]) => `${k} ${v.toFixed(1)}`).join(", ")} ms`,
  );
  console.log(
    `    wake-up to running: CPU idle ${summary(wakeDelays.idle)}; CPU busy ${
      summary(wakeDelays.busy)
    }`,
  );
}

for (const [i, line] of rounds.entries()) {
  const broker = brokers[i].tid;
  const worker = workers[i].tid;
  const from = Math.max(brokers[i].first, workers[i].first) + skipMs;
  const to = i + 1 < brokers.length ? brokers[i + 1].first : Infinity;
  const name = line.match(/latency\/qos\d+\s+(\S+):/)?.[1] ?? "?";
  console.log(`\n== ${name} (${execs.get(tgid.get(broker)!) ?? "?"} pid ${broker})`);
  analyse(broker, busiest(broker), from, to, "broker reads the publisher");
  analyse(worker, busiest(worker), from, to, "generator reads the subscriber's deliveries");
}
if (args.keep === undefined) await Deno.remove(dir, { recursive: true });
else console.log(`\ntrace and bench results kept in ${dir}`);
