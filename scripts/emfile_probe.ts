/**
 * What a listener does when the process runs out of file descriptors: a child process with a low
 * open-file limit (`ulimit -n`) listens on 127.0.0.1 with Perch's native-handle listener or with
 * `Deno.listen`; this process opens more connections than the limit allows, closes them all, then
 * connects again and reports whether the child accepted those and is still alive.
 *
 * ```sh
 * deno run -A scripts/emfile_probe.ts --listener handle --limit 128 --connections 200
 * deno run -A scripts/emfile_probe.ts --listener deno --limit 128 --connections 200
 * deno run -A scripts/emfile_probe.ts --listener perch --limit 128 --connections 200
 * deno run -A scripts/emfile_probe.ts --listener perch-handle --limit 128 --connections 200
 * ```
 *
 * `perch` and `perch-handle` run the broker itself (`src/main.ts`, memory backbone, no admin API),
 * with `listeners.tcp.nativeHandle` off and on; their last 5 clients send CONNECT, and the probe
 * counts CONNACKs (a TCP connect alone succeeds as soon as the kernel queues it). On Deno 2.9.6
 * `perch` answered 5 of 5 and `perch-handle` 0 of 5 (see docs/benchmarks.md, "Idle connections").
 * Since the native-handle listener checks itself and listens again, `perch-handle` recovers about
 * 7-12 s after descriptors are free, later than this probe waits: the recovery is tested in
 * `test/transport/deno_handle_emfile_test.ts`.
 * The bare listeners (`handle`, `deno`) made that Deno panic (`ext/signals/lib.rs`, "Too many open
 * files") in every try, so the probe is not a test.
 *
 * @module
 */

import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    child: { type: "boolean", default: false },
    listener: { type: "string", default: "handle" },
    limit: { type: "string", default: "128" },
    connections: { type: "string", default: "200" },
  },
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

if (values.child) {
  // The listening side: counts accepted connections, closes them all after the first wave.
  let accepted = 0;
  const open = new Set<{ close(): void }>();
  const onAccept = (connection: { close(): void }) => {
    accepted++;
    open.add(connection);
  };
  if (values.listener === "handle") {
    const { HandleListener } = await import("../src/transport/deno_handle.ts");
    const listener = HandleListener.tcp({
      hostname: "127.0.0.1",
      port: 0,
      nativeHandle: true,
      onAcceptError: (error) => console.log(`accept error: ${error.message}`),
    }, (connection) => {
      onAccept(connection);
      return { onData() {}, onClose: () => open.delete(connection) };
    });
    console.log(`port ${listener.port}`);
  } else {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    console.log(`port ${(listener.addr as Deno.NetAddr).port}`);
    (async () => {
      for (;;) {
        try {
          onAccept(await listener.accept());
        } catch (error) {
          console.log(`accept error: ${(error as Error).message}`);
          await sleep(50);
        }
      }
    })();
  }
  await sleep(3000);
  console.log(`first wave: accepted ${accepted}`);
  for (const connection of [...open]) connection.close();
  open.clear();
  await sleep(4000);
  console.log(`after closing all and a second wave of 5: accepted ${accepted}`);
  Deno.exit(0);
}

const perch = values.listener.startsWith("perch");
const target = perch
  ? `"${new URL("../src/main.ts", import.meta.url).pathname}"`
  : `"${new URL(import.meta.url).pathname}" --child --listener ${values.listener}`;
const child = new Deno.Command("bash", {
  args: ["-c", `ulimit -n ${Number(values.limit)} && exec "${Deno.execPath()}" run -A ${target}`],
  env: {
    PERCH_LISTENERS__TCP__HOST: "127.0.0.1",
    PERCH_LISTENERS__TCP__PORT: "0",
    PERCH_LISTENERS__TCP__NATIVE_HANDLE: String(values.listener === "perch-handle"),
    PERCH_ADMIN__ENABLED: "false",
    PERCH_SYS__ENABLED: "false",
  },
  stdout: "piped",
  stderr: "piped",
}).spawn();
const started = perch ? /listener started .*transport=tcp .*address=\S*:(\d+)/ : /port (\d+)/;
const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
let buffered = "";
while (!started.test(buffered)) {
  const { value, done } = await reader.read();
  if (done) break;
  buffered += value;
}
const port = Number(started.exec(buffered)?.[1]);
const output = (async () => {
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffered += value;
  }
})();
const clients: Deno.Conn[] = [];
const connect = async (count: number) => {
  let failed = 0;
  for (let i = 0; i < count; i++) {
    try {
      clients.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    } catch {
      failed++;
    }
  }
  return failed;
};
const firstFailed = await connect(Number(values.connections));
await sleep(3500);
for (const client of clients.splice(0)) client.close();
await sleep(1000);
const secondFailed = await connect(5);
let answered = 0;
if (perch) {
  // A TCP connect succeeds once the kernel queues it: only a CONNACK shows the broker accepted.
  const connect311 = new Uint8Array([
    ...[0x10, 0x0e, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x00],
    ...[0x00, 0x02, 0x70, 0x31],
  ]);
  await Promise.all(clients.map(async (client) => {
    await client.write(connect311).catch(() => {});
    const reply = new Uint8Array(4);
    const timeout = sleep(3000).then(() => null);
    const n = await Promise.race([client.read(reply).catch(() => null), timeout]);
    if (n === 4 && reply[0] === 0x20) answered++;
  }));
  child.kill("SIGTERM");
}
const status = await child.status;
await output;
for (const client of clients.splice(0)) client.close();
const stderr = new TextDecoder().decode(await new Response(child.stderr).arrayBuffer());
const acceptFailures = stderr.split("\n").filter((line) => line.includes("accept failed")).length;
if (perch) console.log(`"accept failed" logged ${acceptFailures} times`);
console.log(
  buffered.trim().split("\n").filter((line) => !/client (dis)?connected/.test(line)).slice(-8)
    .join("\n"),
);
console.log(`connects refused: first wave ${firstFailed}, second wave ${secondFailed} of 5`);
if (perch) console.log(`second wave answered with CONNACK: ${answered} of 5`);
console.log(`child exit code ${status.code}`);
const panic = /panicked at ([^\n]+)/.exec(stderr);
if (panic) console.log(`child panicked at ${panic[1]}`);
