/**
 * TLS client certificate authentication (mutual TLS). The TLS listener verifies the chain against
 * the configured CA during the handshake, so a certificate that reaches this provider is already
 * trusted; the provider allows the client, optionally with the certificate's common name as its
 * user name. A client without a certificate passes to the next provider.
 *
 * @module
 */

import { ReasonCode } from "../codec/reason_codes.ts";
import type { AuthenticateRequest } from "../hooks/hooks.ts";
import { type AuthDecision, type AuthProvider, PASS } from "./provider.ts";

/** Options for {@linkcode CertificateAuthProvider}. */
export interface CertificateAuthOptions {
  /** The certificate's subject CN becomes the user name (replacing any the client sent). */
  usernameFromCommonName: boolean;
}

/** Allows clients that presented a verified certificate. */
export class CertificateAuthProvider implements AuthProvider {
  readonly name = "certificate";
  #options: CertificateAuthOptions;

  constructor(options: CertificateAuthOptions) {
    this.#options = options;
  }

  authenticate(request: AuthenticateRequest): AuthDecision {
    const certificate = request.peerCertificate;
    if (certificate === undefined) return PASS;
    if (!this.#options.usernameFromCommonName) return { outcome: "allow" };
    const commonName = certificate.commonName;
    if (commonName === undefined || commonName === "") {
      return {
        outcome: "deny",
        reasonCode: ReasonCode.NotAuthorized,
        reason: "Client certificate has no common name",
      };
    }
    return { outcome: "allow", username: commonName };
  }
}
