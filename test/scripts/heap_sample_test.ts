import assert from "node:assert/strict";
import { allocationSites, sampleHeap } from "../../scripts/heap_sample.ts";

const ALLOCATOR = `
const kept = [];
function makeRecords() {
  for (let i = 0; i < 1000; i++) kept.push({ index: i, label: "record " + i });
  if (kept.length > 100_000) kept.length = 0;
}
setInterval(makeRecords, 1);
`;

Deno.test("heap_sample names the function that allocates in a process started with --inspect", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--inspect=127.0.0.1:0", "-"],
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(ALLOCATOR));
  await writer.close();
  const stderr = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  try {
    let text = "";
    let port: number | undefined;
    while (port === undefined) {
      const { value, done } = await stderr.read();
      if (done) throw new Error(`no inspector address in:\n${text}`);
      text += value;
      const found = text.match(/ws:\/\/127\.0\.0\.1:(\d+)\//);
      if (found) port = Number(found[1]);
    }
    const { total, sites } = allocationSites(await sampleHeap(port, 1));
    assert.ok(total > 0);
    assert.match(sites[0].stack, /^makeRecords /);
  } finally {
    child.kill();
    await child.status;
    await stderr.cancel();
  }
});
