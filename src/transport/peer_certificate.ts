/**
 * A verified client certificate as the runtimes' TLS sockets describe it (`getPeerCertificate()`,
 * the same shape on Deno's `node:tls` and on Bun), reduced to what authentication needs.
 *
 * @module
 */

import type { PeerCertificate } from "./transport.ts";

/** The part of `getPeerCertificate()`'s answer read here: subject fields, repeated ones as arrays. */
export interface DetailedCertificate {
  subject?: unknown;
}

/** The subject of a verified peer certificate, or undefined when it has none. */
export function peerCertificateOf(
  certificate: DetailedCertificate | null | undefined,
): PeerCertificate | undefined {
  const subject = certificate?.subject as Record<string, string | string[]> | undefined;
  if (!subject) return undefined;
  const first = (value: string | string[] | undefined) => Array.isArray(value) ? value[0] : value;
  const text = Object.entries(subject)
    .map(([key, value]) => `${key}=${Array.isArray(value) ? value.join("+") : value}`)
    .join(", ");
  return { commonName: first(subject.CN), subject: text };
}

/** `::ffff:127.0.0.1` (a dual-stack socket's view of IPv4) as `127.0.0.1`. */
export function unmapIpv4(address: string): string {
  return address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address;
}
