// Aedes under Node.js for the Perch benchmarks, with Aedes' default options and in-memory persistence.
// Usage: node aedes_server.js [host ...]   (default 127.0.0.1). Listens on an OS-assigned port, the same
// port on every host, then prints one line: "aedes <version> listening port=<port>".
import { createServer } from "node:net";

// Resolved by Node from ./node_modules; a non-literal specifier keeps `deno check scripts/` from
// resolving this Node-only dependency.
const aedesPackage = "aedes";
const { Aedes } = await import(aedesPackage);

const hosts = process.argv.length > 2 ? process.argv.slice(2) : ["127.0.0.1"];
const broker = await Aedes.createBroker();
const servers = [];
let port = 0;
for (const host of hosts) {
  const server = createServer(broker.handle);
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port }, resolve);
  });
  port = server.address().port;
  servers.push(server);
}
console.log(`aedes ${broker.version} listening port=${port}`);

function shutdown() {
  for (const server of servers) server.close();
  broker.close(() => process.exit(0));
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
