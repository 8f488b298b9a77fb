/**
 * The per-delivery ACL check sits on the fan-out path: measure it cached (the common case: a
 * client receives the same topics again and again) and uncached (every topic new).
 *
 * Run: deno bench test/auth/acl_bench.ts
 */

import { Acl, type AclRule } from "../../src/auth/acl.ts";
import type { ClientInfo } from "../../src/hooks/hooks.ts";

const rules: AclRule[] = [];
for (let i = 0; i < 50; i++) {
  rules.push({ permission: "deny", action: "both", topic: `tenant-${i}/private/#` });
}
rules.push({ permission: "allow", action: "both", topic: "users/%u/#" });
rules.push({ permission: "allow", action: "subscribe", topic: "public/+/events/#" });
const acl = new Acl({ rules, default: "deny" });
const client: ClientInfo = {
  clientId: "bench",
  username: "alice",
  remoteAddress: "127.0.0.1",
  remotePort: 1,
  protocolVersion: 5,
  transport: "tcp",
  peerCertificate: undefined,
};
const topics = Array.from({ length: 100 }, (_, i) => `public/dev-${i}/events/temp`);
const fresh = Array.from({ length: 100_000 }, (_, i) => `public/dev-${i}/events/temp`);
let sink = 0;
let next = 0;

Deno.bench("Acl.canRead, 52 rules, cached topic", { group: "acl", baseline: true }, () => {
  for (const topic of topics) if (acl.canRead(client, topic)) sink++;
});

Deno.bench("Acl.canRead, 52 rules, new topic each time", { group: "acl" }, () => {
  for (let i = 0; i < 100; i++) {
    if (acl.canRead(client, fresh[next++ % fresh.length])) sink++;
  }
});

Deno.bench("no ACL (loop overhead)", { group: "acl" }, () => {
  for (const topic of topics) if (topic.length > 0) sink++;
});

globalThis.addEventListener("unload", () => {
  if (sink < 0) console.log(sink);
});
