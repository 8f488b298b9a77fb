/**
 * Runs the Eclipse Paho scenarios of `test/integration/paho_client.py` (Debian's
 * python3-paho-mqtt, MQTT 5) against a broker under test and reads what they report.
 *
 * @module
 */

const SCRIPT = new URL("../integration/paho_client.py", import.meta.url).pathname;
/** Debian's interpreter first: a pyenv or venv `python3` earlier on PATH lacks Debian's packages. */
const INTERPRETERS = ["/usr/bin/python3", "python3"];
/** How long to wait for the next report before failing (a guard, never a delay). */
const WAIT_MS = 15_000;

/** The first Python that can import paho.mqtt; an error naming the package when there is none. */
export async function pahoPython(): Promise<string> {
  for (const candidate of INTERPRETERS) {
    try {
      const { success } = await new Deno.Command(candidate, {
        args: ["-c", "import paho.mqtt.client"],
        stdout: "null",
        stderr: "null",
      }).output();
      if (success) return candidate;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
  throw new Error(
    "No Python with paho.mqtt found: install it with apt-get install -y python3-paho-mqtt",
  );
}

/** One JSON report line of a scenario. */
export type PahoEvent = { event: string } & Record<string, unknown>;

/** A running Paho scenario. */
export class PahoRun {
  #child: Deno.ChildProcess;
  #stdin: WritableStreamDefaultWriter<Uint8Array>;
  #events: PahoEvent[] = [];
  #waiters: ((event: PahoEvent | undefined) => void)[] = [];
  #ended = false;
  #stderr: Promise<string>;
  #reading: Promise<void>;

  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.#stdin = child.stdin.getWriter();
    this.#stderr = new Response(child.stderr).text();
    this.#reading = this.#read();
  }

  /** Starts `scenario` against the broker on `port`. */
  static async start(scenario: string, port: number): Promise<PahoRun> {
    const child = new Deno.Command(await pahoPython(), {
      args: [SCRIPT, scenario, String(port)],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    return new PahoRun(child);
  }

  /** The next report, which must be `event`. */
  async next(event: string): Promise<PahoEvent> {
    const got = this.#events.shift() ?? await this.#wait();
    if (!got) throw new Error(`Paho ended before "${event}": ${await this.#stderr}`);
    if (got.event !== event) {
      throw new Error(`Expected Paho event "${event}", got ${JSON.stringify(got)}`);
    }
    return got;
  }

  /** Lets a scenario waiting at a "go" line continue. */
  async go(): Promise<void> {
    await this.#stdin.write(new TextEncoder().encode("go\n"));
  }

  /** Waits for the scenario to exit and requires success. */
  async finish(): Promise<void> {
    await this.#stdin.close().catch(() => {});
    const status = await this.#child.status;
    await this.#reading;
    const stderr = await this.#stderr;
    if (!status.success) throw new Error(`Paho scenario failed (${status.code}): ${stderr}`);
  }

  /** Kills the process (an abnormal network close, as far as the broker knows). */
  async kill(): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await this.#stdin.close().catch(() => {});
    await this.#child.status;
    await this.#reading;
    await this.#stderr;
  }

  #wait(): Promise<PahoEvent | undefined> {
    if (this.#ended) return Promise.resolve(undefined);
    const { promise, resolve, reject } = Promise.withResolvers<PahoEvent | undefined>();
    const timer = setTimeout(() => {
      this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
      reject(new Error(`No Paho report within ${WAIT_MS} ms`));
    }, WAIT_MS);
    const waiter = (event: PahoEvent | undefined) => {
      clearTimeout(timer);
      resolve(event);
    };
    this.#waiters.push(waiter);
    return promise;
  }

  async #read(): Promise<void> {
    let buffered = "";
    for await (const chunk of this.#child.stdout.pipeThrough(new TextDecoderStream())) {
      buffered += chunk;
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (line === "") continue;
        const event = JSON.parse(line) as PahoEvent;
        const waiter = this.#waiters.shift();
        if (waiter) waiter(event);
        else this.#events.push(event);
      }
    }
    this.#ended = true;
    for (const waiter of this.#waiters.splice(0)) waiter(undefined);
  }
}
