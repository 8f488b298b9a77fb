/**
 * The webhook sink: each event is `POST {url}/{EventName}` with smq's JSON body, as smq's HTTP
 * notifier sends it, plus `X-Perch-Event` and, with a secret, `X-Perch-Signature:
 * sha256=<hex HMAC-SHA256 of the body>`. Any 2xx answer is success; other 4xx answers (but 408
 * and 429) are not retried, since sending the same request again cannot change them.
 *
 * @module
 */

import { PermanentFailure, type Sender } from "./queue.ts";
import type { Notification } from "./records.ts";

/** Where and how to post. */
export interface WebhookOptions {
  /** Base URL, without a trailing slash. */
  url: string;
  /** HMAC-SHA256 key of the signature header; no header when undefined. */
  secret: string | undefined;
  /** Longest wait for one answer, in ms. */
  timeoutMs: number;
}

const encoder = new TextEncoder();

/** Posts notifications to a URL. */
export class WebhookSender implements Sender {
  readonly #options: WebhookOptions;
  readonly #abort = new AbortController();
  readonly #key: Promise<CryptoKey> | undefined;

  constructor(options: WebhookOptions) {
    this.#options = options;
    this.#key = options.secret === undefined ? undefined : crypto.subtle.importKey(
      "raw",
      encoder.encode(options.secret),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign"],
    );
  }

  async send(notification: Notification): Promise<void> {
    const body = encoder.encode(notification.body);
    const headers: Record<string, string> = {
      "content-type": "application/json",
      "x-perch-event": notification.name,
    };
    if (this.#key) {
      const signature = await crypto.subtle.sign("HMAC", await this.#key, body);
      headers["x-perch-signature"] = `sha256=${new Uint8Array(signature).toHex()}`;
    }
    const response = await fetch(`${this.#options.url}/${notification.name}`, {
      method: "POST",
      headers,
      body,
      signal: AbortSignal.any([
        AbortSignal.timeout(this.#options.timeoutMs),
        this.#abort.signal,
      ]),
    });
    // Read the answer out, so the connection goes back to the pool.
    await response.body?.cancel();
    if (response.ok) return;
    const message = `${notification.name}: the receiver answered HTTP ${response.status}`;
    const status = response.status;
    if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
      throw new PermanentFailure(message);
    }
    throw new Error(message);
  }

  close(): Promise<void> {
    this.#abort.abort();
    return Promise.resolve();
  }
}
