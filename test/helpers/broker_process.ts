/**
 * `src/main.ts` as a real process for tests: started with `PERCH_*` environment settings (JSON
 * logs, loopback listeners on free ports, `$SYS` off), its log lines parsed and awaited, stopped
 * with SIGTERM or killed with SIGKILL.
 *
 * @module
 */

/** Longest wait for the process to log a line (a guard, never a delay). */
const WAIT_MS = 30_000;

export interface Running {
  /** Parsed JSON log lines so far. */
  logs: Record<string, unknown>[];
  /** The first log line with this message (and, if given, that `where` accepts), waited for. */
  line(
    message: string,
    where?: (entry: Record<string, unknown>) => boolean,
  ): Promise<Record<string, unknown>>;
  /** Sends SIGTERM and resolves with the exit status. */
  stop(): Promise<Deno.CommandStatus>;
  /** Sends SIGKILL (a crash: nothing is flushed or closed) and resolves with the exit status. */
  kill(): Promise<Deno.CommandStatus>;
  /** Resolves with the exit status once the process ends by itself. */
  exited(): Promise<Deno.CommandStatus>;
}

/** How to run the process: `deno run` flags (default `-A`) and perch's own arguments. */
export interface StartOptions {
  flags?: string[];
  args?: string[];
}

/** The `deno run` flags of `deno task start`, from deno.json. */
export async function startTaskFlags(): Promise<string[]> {
  const manifest = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));
  const words = String(manifest.tasks.start).split(/\s+/);
  return words.slice(words.indexOf("run") + 1, words.indexOf("src/main.ts"));
}

/** Starts `src/main.ts` with `env` over the test defaults (which it may override). */
export function start(env: Record<string, string>, options: StartOptions = {}): Running {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...(options.flags ?? ["-A"]),
      new URL("../../src/main.ts", import.meta.url).pathname,
      ...(options.args ?? []),
    ],
    env: {
      PERCH_LOG__FORMAT: "json",
      PERCH_LISTENERS__TCP__HOST: "127.0.0.1",
      PERCH_LISTENERS__TCP__PORT: "0",
      PERCH_ADMIN__PORT: "0",
      PERCH_SYS__ENABLED: "false",
      ...env,
    },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const logs: Record<string, unknown>[] = [];
  const waiters: {
    message: string;
    where: (entry: Record<string, unknown>) => boolean;
    resolve: (line: Record<string, unknown>) => void;
  }[] = [];
  const read = async (stream: ReadableStream<Uint8Array>) => {
    let pending = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      pending += chunk;
      let end;
      while ((end = pending.indexOf("\n")) !== -1) {
        const text = pending.slice(0, end);
        pending = pending.slice(end + 1);
        let entry: Record<string, unknown>;
        try {
          entry = JSON.parse(text);
        } catch {
          entry = { msg: text };
        }
        logs.push(entry);
        for (const waiter of [...waiters]) {
          if (entry.msg === waiter.message && waiter.where(entry)) {
            waiters.splice(waiters.indexOf(waiter), 1);
            waiter.resolve(entry);
          }
        }
      }
    }
  };
  const drained = Promise.all([read(child.stdout), read(child.stderr)]);
  const signal = async (name: Deno.Signal) => {
    try {
      child.kill(name);
    } catch {
      // Already exited.
    }
    const status = await child.status;
    await drained;
    return status;
  };
  return {
    logs,
    line(message, where = () => true) {
      const found = logs.find((entry) => entry.msg === message && where(entry));
      if (found) return Promise.resolve(found);
      const { promise, resolve, reject } = Promise.withResolvers<Record<string, unknown>>();
      const timer = setTimeout(
        () => reject(new Error(`No "${message}" log line; got ${JSON.stringify(logs)}`)),
        WAIT_MS,
      );
      waiters.push({
        message,
        where,
        resolve: (line) => (clearTimeout(timer), resolve(line)),
      });
      return promise;
    },
    async exited() {
      const status = await child.status;
      await drained;
      return status;
    },
    stop: () => signal("SIGTERM"),
    kill: () => signal("SIGKILL"),
  };
}

/** The port of a log line's `address` (`host:port`). */
export function portOf(line: Record<string, unknown>): number {
  return Number(String(line.address).split(":").pop());
}
