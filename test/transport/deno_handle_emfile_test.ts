/**
 * Perch on Deno with the native-handle TCP listener (`listeners.tcp.nativeHandle: true`) after the
 * process ran out of file descriptors: the runtime's listening handle stops accepting for good then
 * (Deno 2.9.6), and the listener must notice and listen again once descriptors are free. The broker
 * runs under `ulimit -n 128`; 200 clients exhaust its descriptors and go away; a client connecting
 * after the listener says it listens again gets its CONNACK.
 */

import assert from "node:assert/strict";

const MAIN = new URL("../../src/main.ts", import.meta.url).pathname;
/** A 3.1.1 CONNECT, clean session, keep-alive 0, client id `c`. */
const CONNECT = new Uint8Array([
  ...[0x10, 0x0d, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x00],
  ...[0x00, 0x01, 0x63],
]);

/** Reads lines of a stream into `lines`, resolving waiters whose pattern a line matches. */
function lineWatcher(stream: ReadableStream<Uint8Array>) {
  const lines: string[] = [];
  const waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  const done = (async () => {
    let pending = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      const parts = (pending + text).split("\n");
      pending = parts.pop() ?? "";
      for (const line of parts) {
        lines.push(line);
        for (const waiter of waiters.splice(0)) {
          if (waiter.pattern.test(line)) waiter.resolve(line);
          else waiters.push(waiter);
        }
      }
    }
  })();
  const next = (pattern: RegExp, timeoutMs: number): Promise<string> => {
    const seen = lines.find((line) => pattern.test(line));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no line matching ${pattern} in ${timeoutMs} ms`)),
        timeoutMs,
      );
      waiters.push({
        pattern,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      });
    });
  };
  return { lines, next, done };
}

/** Whether a CONNACK arrives on `conn` within `ms`. */
async function connack(conn: Deno.Conn, ms: number): Promise<boolean> {
  const reply = new Uint8Array(4);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), ms));
  const n = await Promise.race([conn.read(reply).catch(() => null), timeout]);
  clearTimeout(timer);
  return n === 4 && reply[0] === 0x20;
}

Deno.test("the native-handle TCP listener accepts again after the process ran out of file descriptors", async () => {
  const child = new Deno.Command("bash", {
    args: ["-c", `ulimit -n 128 && exec "${Deno.execPath()}" run -A "${MAIN}"`],
    env: {
      PERCH_LISTENERS__TCP__HOST: "127.0.0.1",
      PERCH_LISTENERS__TCP__PORT: "0",
      PERCH_LISTENERS__TCP__NATIVE_HANDLE: "true",
      PERCH_ADMIN__ENABLED: "false",
      PERCH_SYS__ENABLED: "false",
    },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdout = lineWatcher(child.stdout);
  const stderr = lineWatcher(child.stderr);
  const clients: Deno.Conn[] = [];
  try {
    const started = await stdout.next(
      /listener started .*transport=tcp .*address=\S*:(\d+)/,
      30_000,
    );
    const port = Number(/address=\S*:(\d+)/.exec(started)![1]);
    // More clients than the broker has descriptors for: the kernel queues them all, the broker
    // accepts until it runs out.
    for (let i = 0; i < 200; i++) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      clients.push(conn);
      await conn.write(CONNECT).catch(() => {});
    }
    const answers = await Promise.all(clients.map((conn) => connack(conn, 3000)));
    const answered = answers.filter(Boolean).length;
    assert.ok(answered > 0 && answered < 200, `${answered} of 200 answered: the limit was not met`);
    for (const conn of clients.splice(0)) conn.close();
    // The listener notices it no longer accepts and listens again.
    await stderr.next(/listening again/, 30_000);
    const late = await Deno.connect({ hostname: "127.0.0.1", port });
    clients.push(late);
    await late.write(CONNECT);
    assert.ok(await connack(late, 5000), "no CONNACK after the listener listened again");
  } finally {
    for (const conn of clients) conn.close();
    child.kill("SIGTERM");
    await child.status;
    await Promise.all([stdout.done, stderr.done]);
  }
});
