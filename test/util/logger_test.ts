import assert from "node:assert/strict";
import {
  createLogger,
  type LogEntryLevel,
  type LoggerOptions,
  nullLogger,
} from "../../src/util/logger.ts";
import { ManualClock } from "../../src/util/manual_clock.ts";

const T0 = Date.UTC(2026, 10, 22, 10, 0, 0, 0);

function capture(options: LoggerOptions = {}) {
  const lines: string[] = [];
  const levels: LogEntryLevel[] = [];
  const log = createLogger({
    clock: new ManualClock(T0),
    ...options,
    write: (line, level) => {
      lines.push(line);
      levels.push(level);
    },
  });
  return { log, lines, levels };
}

Deno.test("createLogger() text format writes time, level, message and key=value fields", () => {
  const { log, lines } = capture();
  log.info("listener started", { transport: "tcp", address: "0.0.0.0:1883" });
  assert.deepEqual(lines, [
    "2026-11-22T10:00:00.000Z INFO listener started transport=tcp address=0.0.0.0:1883",
  ]);
});

Deno.test("createLogger() text format quotes values with spaces, quotes, = or control characters", () => {
  const { log, lines } = capture();
  log.warn("odd values", {
    spaced: "a b",
    quoted: 'say "hi"',
    eq: "a=b",
    empty: "",
    newline: "x\ny",
    n: 42,
    ok: true,
    nothing: undefined,
    nil: null,
    big: 10n,
    list: [1, "two"],
    obj: { a: 1 },
  });
  assert.equal(
    lines[0],
    '2026-11-22T10:00:00.000Z WARN odd values spaced="a b" quoted="say \\"hi\\"" eq="a=b" empty=""' +
      ' newline="x\\ny" n=42 ok=true nothing=undefined nil=null big=10 list=[1,"two"] obj={"a":1}',
  );
});

Deno.test("createLogger() text format escapes control characters in the message (one entry, one line)", () => {
  const { log, lines } = capture();
  log.error("client id\nINFO forged entry\t!");
  assert.equal(lines[0], "2026-11-22T10:00:00.000Z ERROR client id\\nINFO forged entry\\t!");
});

Deno.test("createLogger() json format writes one object per line with time, level, msg and fields", () => {
  const { log, lines } = capture({ format: "json" });
  log.info("listener started", { transport: "tcp", port: 1883, tls: false, extra: undefined });
  assert.equal(lines.length, 1);
  assert.ok(!lines[0].includes("\n"));
  assert.deepEqual(JSON.parse(lines[0]), {
    time: "2026-11-22T10:00:00.000Z",
    level: "info",
    msg: "listener started",
    transport: "tcp",
    port: 1883,
    tls: false,
    extra: null,
  });
});

Deno.test("createLogger() json format renames fields that clash with time, level or msg", () => {
  const { log, lines } = capture({ format: "json" });
  log.child({ level: "bound" }).info("m", { msg: "field", time: 1 });
  assert.deepEqual(JSON.parse(lines[0]), {
    time: "2026-11-22T10:00:00.000Z",
    level: "info",
    msg: "m",
    "fields.level": "bound",
    "fields.msg": "field",
    "fields.time": 1,
  });
});

Deno.test("createLogger() writes only entries at or above the level", () => {
  const { log, levels } = capture({ level: "warn" });
  assert.equal(log.level, "warn");
  log.debug("d");
  log.info("i");
  log.warn("w");
  log.error("e");
  assert.deepEqual(levels, ["warn", "error"]);

  const all = capture({ level: "debug" });
  all.log.debug("d");
  all.log.info("i");
  assert.deepEqual(all.levels, ["debug", "info"]);

  const silent = capture({ level: "silent" });
  silent.log.error("e");
  assert.deepEqual(silent.lines, []);
});

Deno.test("createLogger() defaults to level info and the text format", () => {
  const { log, lines } = capture();
  assert.equal(log.level, "info");
  log.debug("hidden");
  log.info("shown");
  assert.deepEqual(lines, ["2026-11-22T10:00:00.000Z INFO shown"]);
});

Deno.test("createLogger() does not render fields of a disabled level", () => {
  const { log } = capture({ level: "info" });
  let rendered = false;
  log.debug("d", {
    get costly() {
      rendered = true;
      return 1;
    },
  });
  assert.equal(rendered, false);
});

Deno.test("createLogger() rejects an unknown level or format", () => {
  assert.throws(() => createLogger({ level: "verbose" as "debug" }), {
    name: "RangeError",
    message: 'Invalid log level: expected one of debug, info, warn, error, silent, got "verbose"',
  });
  assert.throws(() => createLogger({ format: "xml" as "json" }), {
    name: "RangeError",
    message: 'Invalid log format: expected text or json, got "xml"',
  });
});

Deno.test("Logger.child() binds fields, keeps the level and lets call fields win", () => {
  const { log, lines } = capture({ level: "debug" });
  const conn = log.child({ clientId: "c1", remote: "10.0.0.1:5000" });
  assert.equal(conn.level, "debug");
  conn.debug("packet", { type: "PUBLISH" });
  conn.child({ clientId: "c2", session: 7 }).info("takeover");
  conn.info("override", { clientId: "c3" });
  log.info("parent unchanged");
  assert.deepEqual(lines.map((l) => l.slice(25)), [
    "DEBUG packet clientId=c1 remote=10.0.0.1:5000 type=PUBLISH",
    "INFO takeover clientId=c2 remote=10.0.0.1:5000 session=7",
    "INFO override clientId=c3 remote=10.0.0.1:5000",
    "INFO parent unchanged",
  ]);
});

Deno.test("createLogger() redacts secret fields at any depth in both formats", () => {
  for (const format of ["text", "json"] as const) {
    const { log, lines } = capture({ format });
    log.child({ Authorization: "Bearer abc" }).info("connect", {
      password: "hunter2",
      TOKEN: "t0k3n",
      secret: "s3cr3t",
      jwt: "eyJhbGciOi",
      apiToken: "api-t0k3n",
      client_secret: "client-value",
      connect: { username: "alice", password: "hunter2", will: { token: "deep" } },
      list: [{ secret: "in-list" }],
    });
    const line = lines[0];
    for (
      const secret of [
        "Bearer abc",
        "hunter2",
        "t0k3n",
        "s3cr3t",
        "eyJhbGciOi",
        "client-value",
        "deep",
        "in-list",
      ]
    ) {
      assert.ok(!line.includes(secret), `${format} line leaks ${secret}: ${line}`);
    }
    assert.ok(line.includes("alice"));
    assert.ok(line.includes("[redacted]"));
  }
  const { log, lines } = capture({ format: "json" });
  log.info("m", { password: "x", connect: { password: "y" } });
  const entry = JSON.parse(lines[0]);
  assert.equal(entry.password, "[redacted]");
  assert.deepEqual(entry.connect, { password: "[redacted]" });
});

Deno.test("createLogger() renders errors as their message and cause chain", () => {
  const error = new Error("Cannot write: socket closed", {
    cause: new TypeError("bad state", { cause: "EPIPE" }),
  });
  const text = capture();
  text.log.error("write failed", { err: error });
  assert.equal(
    text.lines[0],
    '2026-11-22T10:00:00.000Z ERROR write failed err="Cannot write: socket closed (cause: TypeError: bad state (cause: EPIPE))"',
  );
  const json = capture({ format: "json" });
  json.log.error("write failed", { err: new Error("boom"), nested: { err: new RangeError("r") } });
  const entry = JSON.parse(json.lines[0]);
  assert.equal(entry.err, "boom");
  assert.deepEqual(entry.nested, { err: "RangeError: r" });
});

Deno.test("createLogger() renders binary data as its size, and cuts cycles and deep nesting", () => {
  const { log, lines } = capture({ format: "json" });
  const cyclic: Record<string, unknown> = { name: "a" };
  cyclic.self = cyclic;
  log.info("m", {
    payload: new Uint8Array(5),
    buffer: new ArrayBuffer(3),
    cyclic,
    deep: { a: { b: { c: { d: { e: { f: 1 } } } } } },
    when: new Date(T0),
    map: new Map([["k", 1]]),
    fn: function handler() {},
    inf: Infinity,
    sym: Symbol("s"),
  });
  assert.deepEqual(JSON.parse(lines[0]), {
    time: "2026-11-22T10:00:00.000Z",
    level: "info",
    msg: "m",
    payload: "[5 bytes]",
    buffer: "[3 bytes]",
    cyclic: { name: "a", self: "[circular]" },
    deep: { a: { b: { c: { d: { e: "[object]" } } } } },
    when: "2026-11-22T10:00:00.000Z",
    map: { k: 1 },
    fn: "[function handler]",
    inf: "Infinity",
    sym: "Symbol(s)",
  });
});

Deno.test("createLogger() writes to stdout (debug, info) and stderr (warn, error) by default", async () => {
  const url = new URL("../../src/util/logger.ts", import.meta.url).href;
  const code = `import { createLogger } from "${url}";
const log = createLogger({ level: "debug" });
log.debug("to-stdout-1"); log.info("to-stdout-2"); log.warn("to-stderr-1"); log.error("to-stderr-2");`;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-lock", code],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  assert.ok(output.success, decode(output.stderr));
  const stdout = decode(output.stdout).trimEnd().split("\n");
  const stderr = decode(output.stderr).trimEnd().split("\n");
  assert.deepEqual(stdout.map((l) => l.split(" ").slice(1).join(" ")), [
    "DEBUG to-stdout-1",
    "INFO to-stdout-2",
  ]);
  assert.deepEqual(stderr.map((l) => l.split(" ").slice(1).join(" ")), [
    "WARN to-stderr-1",
    "ERROR to-stderr-2",
  ]);
});

Deno.test("the default sink writes non-ASCII text and lines longer than its shared buffer whole", async () => {
  const url = new URL("../../src/util/logger.ts", import.meta.url).href;
  // A short line in several scripts, one at the shared buffer's edge and one well past it.
  const code = `import { createLogger } from "${url}";
const log = createLogger({ level: "info" });
log.info("grüße 日本 🐦"); log.info("é".repeat(2700)); log.info("x".repeat(20000)); log.info("after");`;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-lock", code],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  assert.ok(output.success, decode(output.stderr));
  const messages = decode(output.stdout).trimEnd().split("\n").map((line) =>
    line.split(" ").slice(2).join(" ")
  );
  assert.deepEqual(messages, ["grüße 日本 🐦", "é".repeat(2700), "x".repeat(20000), "after"]);
});

Deno.test("nullLogger discards everything", () => {
  assert.equal(nullLogger.level, "silent");
  nullLogger.debug("x");
  nullLogger.info("x", { a: 1 });
  nullLogger.warn("x");
  nullLogger.error("x");
  assert.equal(nullLogger.child({ a: 1 }), nullLogger);
});
