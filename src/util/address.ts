/**
 * Address helpers for security decisions.
 *
 * @module
 */

/**
 * Tells whether an address is a loopback one: `127.0.0.0/8`, `::1`, or an IPv4-mapped loopback
 * (`::ffff:127.x.y.z`), and the host name `localhost`.
 *
 * @param address An IP address as a socket reports it, or a listen host
 * @returns Whether only this machine can use that address
 */
export function isLoopbackAddress(address: string): boolean {
  // A socket's IPv4 address, checked once per connection: without the case folding below.
  if (address.startsWith("127.")) return IPV4_LOOPBACK.test(address);
  const lower = address.toLowerCase().replace(/^\[|\]$/g, "");
  if (lower === "localhost" || lower === "::1" || lower === "0:0:0:0:0:0:0:1") return true;
  const v4 = lower.startsWith("::ffff:") ? lower.slice(7) : lower;
  return IPV4_LOOPBACK.test(v4);
}

const IPV4_LOOPBACK = /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;
