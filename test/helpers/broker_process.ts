/**
 * The real broker as a child process, on Deno (`deno run src/main.ts`) or on Bun
 * (`bun src/main.ts`), configured through its environment and arguments like any deployment. Its
 * JSON log lines are collected; the ports it bound (port 0 everywhere) are read back from its
 * `listener started` and `admin API started` lines; it is stopped with SIGTERM.
 *
 * @module
 */

/** The runtimes the broker runs on. */
export type Runtime = "deno" | "bun";
export const RUNTIMES: readonly Runtime[] = ["deno", "bun"];

/** Longest wait for the process to log a line (a guard, never a delay). */
const WAIT_MS = 30_000;

const MAIN = new URL("../../src/main.ts", import.meta.url).pathname;
const ROOT = new URL("../../", import.meta.url).pathname;

/** One parsed log line (or `{ msg }` for a line that is not JSON). */
export type LogLine = Record<string, unknown>;

/** How to run the process. */
export interface BrokerProcessOptions {
  /** Environment, over defaults that bind TCP and the admin API to free loopback ports. */
  env?: Record<string, string>;
  /** Perch's own arguments (`-c file`, `--check-config`). */
  args?: string[];
  /** `deno run` flags (default `-A`); Bun has no permissions, so they do not apply to it. */
  denoFlags?: string[];
  /**
   * Start it the way an operator does: `deno task start` (its permissions) or `bun run start`
   * (the package.json script).
   */
  startTask?: boolean;
}

/** The ports a running broker bound, by listener. */
export interface BrokerPorts {
  tcp?: number;
  tls?: number;
  ws?: number;
  wss?: number;
  admin?: number;
}

/** A broker process. */
export interface BrokerProcess {
  readonly runtime: Runtime;
  /** Parsed log lines so far, stdout and stderr. */
  readonly logs: LogLine[];
  /** Resolves with the first log line with this message whose fields include `fields`. */
  line(message: string, fields?: LogLine): Promise<LogLine>;
  /** Resolves once the broker has started, with the ports it bound. */
  started(): Promise<BrokerPorts>;
  /** Sends a signal. */
  signal(signal: Deno.Signal): void;
  /** Sends SIGTERM and resolves with the exit status. */
  stop(): Promise<Deno.CommandStatus>;
  /** Sends SIGKILL (a crash: nothing is flushed or closed) and resolves with the exit status. */
  kill(): Promise<Deno.CommandStatus>;
  /** Resolves with the exit status once the process ends by itself. */
  exited(): Promise<Deno.CommandStatus>;
}

/** Registers one `Deno.test` per runtime (all by default), named after it. */
export function runtimeTest(
  name: string,
  scenario: (runtime: Runtime) => Promise<void>,
  runtimes: readonly Runtime[] = RUNTIMES,
): void {
  for (const runtime of runtimes) Deno.test(`${name} [${runtime}]`, () => scenario(runtime));
}

/** The `bun` executable; an error saying how to install it when there is none. */
export async function bunPath(): Promise<string> {
  try {
    const { success } = await new Deno.Command("bun", { args: ["--version"], stdout: "null" })
      .output();
    if (success) return "bun";
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  throw new Error("Cannot run bun: it is not installed; run `npm install -g bun`");
}

/** The `deno run` flags of `deno task start`, from deno.json. */
export async function startTaskFlags(): Promise<string[]> {
  const manifest = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  const words = String(manifest.tasks.start).split(/\s+/);
  return words.slice(words.indexOf("run") + 1, words.indexOf("src/main.ts"));
}

/** The command line that runs the broker on `runtime`. */
async function commandLine(
  runtime: Runtime,
  options: BrokerProcessOptions,
): Promise<[string, string[]]> {
  const args = options.args ?? [];
  if (runtime === "bun") {
    const bun = await bunPath();
    return options.startTask
      ? [bun, ["run", "--silent", "start", ...args]]
      : [bun, [MAIN, ...args]];
  }
  if (options.startTask) return [Deno.execPath(), ["task", "--quiet", "start", ...args]];
  return [Deno.execPath(), ["run", ...(options.denoFlags ?? ["-A"]), MAIN, ...args]];
}

/** Runs the broker to completion (`--check-config`, `--help`) and returns what it printed. */
export async function runBroker(runtime: Runtime, args: string[]): Promise<Deno.CommandOutput> {
  const [command, commandArgs] = await commandLine(runtime, { args });
  return await new Deno.Command(command, {
    args: commandArgs,
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
}

/** Starts the broker on `runtime`. */
export async function startBrokerProcess(
  runtime: Runtime,
  options: BrokerProcessOptions = {},
): Promise<BrokerProcess> {
  const [command, args] = await commandLine(runtime, options);
  const child = new Deno.Command(command, {
    args,
    cwd: ROOT,
    env: {
      PERCH_LOG__FORMAT: "json",
      PERCH_LISTENERS__TCP__HOST: "127.0.0.1",
      PERCH_LISTENERS__TCP__PORT: "0",
      PERCH_ADMIN__HOST: "127.0.0.1",
      PERCH_ADMIN__PORT: "0",
      PERCH_SYS__ENABLED: "false",
      ...options.env,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const logs: LogLine[] = [];
  const waiters = new Set<{ matches: (line: LogLine) => boolean; resolve: () => void }>();
  const read = async (stream: ReadableStream<Uint8Array>) => {
    let pending = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      pending += chunk;
      let end;
      while ((end = pending.indexOf("\n")) !== -1) {
        const text = pending.slice(0, end);
        pending = pending.slice(end + 1);
        let entry: LogLine;
        try {
          entry = JSON.parse(text);
        } catch {
          entry = { msg: text };
        }
        logs.push(entry);
        for (const waiter of [...waiters]) if (waiter.matches(entry)) waiter.resolve();
      }
    }
  };
  const drained = Promise.all([read(child.stdout), read(child.stderr)]);
  const finished = child.status.then(async (status) => {
    await drained;
    for (const waiter of [...waiters]) waiter.resolve();
    return status;
  });
  let ended = false;
  finished.then(() => ended = true);

  const line = (message: string, fields: LogLine = {}): Promise<LogLine> => {
    const matches = (entry: LogLine) =>
      entry.msg === message && Object.entries(fields).every(([k, v]) => entry[k] === v);
    const found = logs.find(matches);
    if (found) return Promise.resolve(found);
    const { promise, resolve, reject } = Promise.withResolvers<LogLine>();
    const fail = (why: string) =>
      reject(
        new Error(`No "${message}" log line (${why}) on ${runtime}; got ${JSON.stringify(logs)}`),
      );
    if (ended) {
      fail("the process ended");
      return promise;
    }
    const timer = setTimeout(() => {
      waiters.delete(waiter);
      fail(`within ${WAIT_MS} ms`);
    }, WAIT_MS);
    const waiter = {
      matches,
      resolve: () => {
        waiters.delete(waiter);
        clearTimeout(timer);
        const entry = logs.find(matches);
        if (entry) resolve(entry);
        else fail("the process ended");
      },
    };
    waiters.add(waiter);
    return promise;
  };

  const signal = (name: Deno.Signal) => {
    try {
      child.kill(name);
    } catch {
      // Already exited.
    }
  };

  return {
    runtime,
    logs,
    line,
    signal,
    async started() {
      await line("broker started");
      const ports: BrokerPorts = {};
      for (const entry of logs) {
        if (entry.msg === "listener started") {
          ports[entry.transport as keyof BrokerPorts] = portOf(entry);
        }
        if (entry.msg === "admin API started") ports.admin = portOf(entry);
      }
      return ports;
    },
    stop() {
      signal("SIGTERM");
      return finished;
    },
    kill() {
      signal("SIGKILL");
      return finished;
    },
    exited: () => finished,
  };
}

/** The port of a log line's `address` field (`127.0.0.1:1883`, `[::1]:1883`). */
export function portOf(line: LogLine): number {
  return Number(String(line.address).split(":").pop());
}
