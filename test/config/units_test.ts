import assert from "node:assert/strict";
import { formatDuration, formatSize, parseDuration, parseSize } from "../../src/config/units.ts";

Deno.test("parseDuration() reads numbers as seconds and strings with a unit", () => {
  const cases: [unknown, number][] = [
    [10, 10_000],
    [0, 0],
    [0.5, 500],
    ["500ms", 500],
    ["10s", 10_000],
    ["1.5s", 1_500],
    ["5m", 300_000],
    ["2h", 7_200_000],
    ["1d", 86_400_000],
    ["10", 10_000],
    [" 3 s ", 3_000],
    [".25s", 250],
    ["0ms", 0],
  ];
  for (const [input, ms] of cases) assert.equal(parseDuration(input), ms, JSON.stringify(input));
});

Deno.test("parseDuration() rejects malformed, negative and non-finite durations", () => {
  for (
    const input of [
      "",
      "10 sec",
      "1w",
      "-5s",
      "5S",
      "1h30m",
      "s",
      -1,
      NaN,
      Infinity,
      true,
      null,
      undefined,
      {},
      [10],
    ]
  ) {
    assert.equal(parseDuration(input), undefined, String(input));
  }
});

Deno.test("parseSize() reads numbers as bytes and strings with SI or binary units", () => {
  const cases: [unknown, number][] = [
    [0, 0],
    [65536, 65536],
    ["1024", 1024],
    ["512B", 512],
    ["64KiB", 65_536],
    ["1MiB", 1_048_576],
    ["1GiB", 1_073_741_824],
    ["1TiB", 2 ** 40],
    ["16kb", 16_000],
    ["16KB", 16_000],
    ["2MB", 2_000_000],
    ["1gb", 1e9],
    ["1.5KiB", 1_536],
    ["10 MiB", 10_485_760],
    ["1mib", 1_048_576],
  ];
  for (const [input, bytes] of cases) assert.equal(parseSize(input), bytes, JSON.stringify(input));
});

Deno.test("parseSize() rejects malformed, negative and fractional byte counts", () => {
  for (
    const input of [
      "",
      "1 megabyte",
      "1PiB",
      "-1KiB",
      "KiB",
      1.5,
      -1,
      NaN,
      Infinity,
      "9999999999TiB",
      false,
      null,
      {},
    ]
  ) {
    assert.equal(parseSize(input), undefined, String(input));
  }
});

Deno.test("formatDuration() uses the largest exact unit", () => {
  assert.equal(formatDuration(0), "0ms");
  assert.equal(formatDuration(1), "1ms");
  assert.equal(formatDuration(1_500), "1500ms");
  assert.equal(formatDuration(1_000), "1s");
  assert.equal(formatDuration(90_000), "90s");
  assert.equal(formatDuration(300_000), "5m");
  assert.equal(formatDuration(7_200_000), "2h");
  assert.equal(formatDuration(172_800_000), "2d");
  for (const ms of [0, 1, 1_500, 90_000, 172_800_000]) {
    assert.equal(parseDuration(formatDuration(ms)), ms);
  }
});

Deno.test("formatSize() uses the largest exact binary unit", () => {
  assert.equal(formatSize(0), "0B");
  assert.equal(formatSize(1_000), "1000B");
  assert.equal(formatSize(1_024), "1KiB");
  assert.equal(formatSize(1_048_576), "1MiB");
  assert.equal(formatSize(3 * 2 ** 30), "3GiB");
  assert.equal(formatSize(2 ** 40), "1TiB");
  assert.equal(formatSize(268_435_460), "268435460B");
  for (const bytes of [0, 1_000, 1_024, 268_435_460]) {
    assert.equal(parseSize(formatSize(bytes)), bytes);
  }
});
