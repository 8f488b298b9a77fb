/**
 * Child processes of the benchmark: brokers and connection generators. Every process is spawned through
 * a {@link ProcessGroup}, so one call stops them all (on completion, on errors and on Ctrl-C). Output is
 * drained continuously (a full pipe would stall a broker that logs) and the last lines are kept for
 * error messages and for line-based hand-shakes.
 *
 * @module
 */

const TAIL_LINES = 200;

/**
 * With `BENCH_OUTPUT_DIR` set, every line a child prints is also appended to
 * `<dir>/<name>-<pid>.log` (e.g. a broker's `--trace-gc-nvp` lines), which the benchmark otherwise
 * keeps only the tail of.
 */
const OUTPUT_DIR = Deno.env.get("BENCH_OUTPUT_DIR");
const STOP_GRACE_MS = 3000;

/** How to start a child process. */
export interface SpawnOptions {
  /** A short name for messages. */
  name: string;
  /** The program. */
  command: string;
  /** Its arguments. */
  args: string[];
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Working directory. */
  cwd?: string;
  /** Give the process a stdin pipe for {@link ManagedProcess.writeLine}. */
  stdin?: boolean;
}

interface LineWatcher {
  pattern: RegExp;
  resolve: (match: RegExpMatchArray) => void;
}

/** A running child process with drained output. */
export class ManagedProcess {
  /** The name given at spawn. */
  readonly name: string;
  /** The OS process id. */
  readonly pid: number;
  /** Resolves with the exit status. */
  readonly status: Promise<Deno.CommandStatus>;
  #child: Deno.ChildProcess;
  #tail: string[] = [];
  #watchers = new Set<LineWatcher>();
  #exited = false;
  #stdin: WritableStreamDefaultWriter<Uint8Array> | undefined;
  #drained: Promise<unknown>;

  /**
   * @param child The spawned child with piped stdout and stderr.
   * @param name A short name for messages.
   */
  constructor(child: Deno.ChildProcess, name: string) {
    this.#child = child;
    this.name = name;
    this.pid = child.pid;
    this.status = child.status.then((status) => {
      this.#exited = true;
      return status;
    });
    this.#drained = Promise.all([this.#drain(child.stdout), this.#drain(child.stderr)]);
  }

  /** Whether the process has exited. */
  get exited(): boolean {
    return this.#exited;
  }

  /** @returns The last lines of output (stdout and stderr interleaved). */
  tail(): string {
    return this.#tail.join("\n");
  }

  /**
   * Waits for an output line matching `pattern` (lines already seen count too).
   *
   * @param pattern The pattern.
   * @param timeoutMs How long to wait.
   * @returns The match.
   */
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    for (const line of this.#tail) {
      const match = line.match(pattern);
      if (match) return Promise.resolve(match);
    }
    return new Promise((resolve, reject) => {
      const watcher: LineWatcher = {
        pattern,
        resolve: (match) => {
          clearTimeout(timer);
          resolve(match);
        },
      };
      const fail = (reason: string) => {
        this.#watchers.delete(watcher);
        clearTimeout(timer);
        reject(new Error(`${this.name} ${reason} before printing ${pattern}:\n${this.tail()}`));
      };
      const timer = setTimeout(() => fail(`timed out after ${timeoutMs} ms`), timeoutMs);
      this.status.then((status) => fail(`exited with code ${status.code}`));
      this.#watchers.add(watcher);
    });
  }

  /**
   * Writes one line to the process's stdin.
   *
   * @param line The line, without newline.
   */
  async writeLine(line: string): Promise<void> {
    this.#stdin ??= this.#child.stdin.getWriter();
    await this.#stdin.write(new TextEncoder().encode(line + "\n"));
  }

  /** Stops the process: SIGTERM, then SIGKILL after a grace period. Safe to call twice. */
  async stop(): Promise<void> {
    if (!this.#exited) {
      try {
        this.#child.kill("SIGTERM");
      } catch {
        // Already gone between the check and the kill.
      }
      const timer = setTimeout(() => {
        if (!this.#exited) this.#child.kill("SIGKILL");
      }, STOP_GRACE_MS);
      await this.status;
      clearTimeout(timer);
    }
    await this.#stdin?.close().catch(() => {});
    await this.#drained;
  }

  async #drain(stream: ReadableStream<Uint8Array>): Promise<void> {
    let pending = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      const lines = (pending + text).split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) this.#onLine(line);
    }
    if (pending) this.#onLine(pending);
  }

  #onLine(line: string): void {
    if (OUTPUT_DIR !== undefined) {
      Deno.writeTextFileSync(`${OUTPUT_DIR}/${this.name}-${this.pid}.log`, line + "\n", {
        append: true,
      });
    }
    this.#tail.push(line);
    if (this.#tail.length > TAIL_LINES) this.#tail.shift();
    for (const watcher of this.#watchers) {
      const match = line.match(watcher.pattern);
      if (match) {
        this.#watchers.delete(watcher);
        watcher.resolve(match);
      }
    }
  }
}

/** Owns every child process the benchmark starts. */
export class ProcessGroup {
  #processes = new Set<ManagedProcess>();

  /**
   * Spawns a child process with piped output.
   *
   * @param options What to run.
   * @returns The running process.
   */
  spawn(options: SpawnOptions): ManagedProcess {
    const child = new Deno.Command(options.command, {
      args: options.args,
      env: options.env,
      cwd: options.cwd,
      stdin: options.stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const process = new ManagedProcess(child, options.name);
    this.#processes.add(process);
    process.status.then(() => this.#processes.delete(process));
    return process;
  }

  /** Stops every process still running. */
  async stopAll(): Promise<void> {
    await Promise.all([...this.#processes].map((process) => process.stop()));
  }
}
