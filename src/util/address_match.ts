/**
 * IP address lists (single addresses and CIDR ranges) for trusted proxies and PROXY protocol
 * sources, on `ipaddr.js`.
 *
 * @module
 */

import ipaddr from "ipaddr.js";

/** Tells whether an IP address is in a configured list. */
export type AddressMatcher = (address: string) => boolean;

/**
 * Writes an address the way the broker reports it: IPv4-mapped IPv6 (`::ffff:10.0.0.1`) as plain
 * IPv4, IPv6 compressed. Text that is not an IP address comes back unchanged.
 */
export function normalizeAddress(address: string): string {
  return isIpAddress(address) ? ipaddr.process(address).toString() : address;
}

/** True for a dotted-quad IPv4 or an IPv6 address (not the legacy hex or octal IPv4 forms). */
export function isIpAddress(text: string): boolean {
  return ipaddr.IPv4.isValidFourPartDecimal(text) || ipaddr.IPv6.isValid(text);
}

/**
 * Tells whether a list entry is an IP address or a CIDR range.
 *
 * @param entry e.g. `10.0.0.1`, `10.0.0.0/8`, `::1`, `fd00::/8`
 */
export function isAddressOrRange(entry: string): boolean {
  return isIpAddress(entry) || (ipaddr.isValidCIDR(entry) && isIpAddress(entry.split("/")[0]));
}

/**
 * Compiles a list of addresses and CIDR ranges into a matcher. IPv4-mapped IPv6 addresses match
 * IPv4 entries.
 *
 * @param entries Addresses and ranges; each must pass {@linkcode isAddressOrRange}
 * @throws {TypeError} naming the first entry that is neither
 */
export function addressMatcher(entries: readonly string[]): AddressMatcher {
  const ranges: [ipaddr.IPv4 | ipaddr.IPv6, number][] = entries.map((entry) => {
    if (entry.includes("/")) {
      if (!isAddressOrRange(entry)) throw new TypeError(`Invalid address or range: "${entry}"`);
      const [address, bits] = ipaddr.parseCIDR(entry);
      return [
        normalizeRange(address),
        address.kind() === "ipv6" && isMapped(address) ? bits - 96 : bits,
      ];
    }
    if (!isIpAddress(entry)) throw new TypeError(`Invalid address or range: "${entry}"`);
    const address = ipaddr.process(entry);
    return [address, address.kind() === "ipv4" ? 32 : 128];
  });
  return (text) => {
    if (!isIpAddress(text)) return false;
    const address = ipaddr.process(text);
    return ranges.some(([range, bits]) =>
      range.kind() === address.kind() && address.match(range as never, bits)
    );
  };
}

function isMapped(address: ipaddr.IPv4 | ipaddr.IPv6): boolean {
  return address.kind() === "ipv6" && (address as ipaddr.IPv6).isIPv4MappedAddress();
}

function normalizeRange(address: ipaddr.IPv4 | ipaddr.IPv6): ipaddr.IPv4 | ipaddr.IPv6 {
  return isMapped(address) ? (address as ipaddr.IPv6).toIPv4Address() : address;
}
