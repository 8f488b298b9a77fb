/**
 * The client side of SCRAM-SHA-256 (RFC 5802/7677), written for the tests on Web Crypto alone and
 * independently of `src/auth/`, so the broker's server side is checked against a second
 * implementation rather than against itself.
 *
 * @module
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

async function hmac(key: Uint8Array, text: Uint8Array): Promise<Uint8Array> {
  const k = await crypto.subtle.importKey(
    "raw",
    key as Uint8Array<ArrayBuffer>,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, text as Uint8Array<ArrayBuffer>));
}

/** One SCRAM-SHA-256 login as a client performs it. */
export class ScramClient {
  readonly username: string;
  #password: string;
  #clientNonce: string;
  #clientFirstBare: string;
  #serverSignature: Uint8Array | undefined;

  constructor(username: string, password: string, clientNonce?: string) {
    this.username = username;
    this.#password = password;
    this.#clientNonce = clientNonce ??
      crypto.getRandomValues(new Uint8Array(18)).toBase64();
    const saslName = username.replaceAll("=", "=3D").replaceAll(",", "=2C");
    this.#clientFirstBare = `n=${saslName},r=${this.#clientNonce}`;
  }

  /** client-first-message: the Authentication Data of CONNECT (or of AUTH 0x19). */
  clientFirst(): Uint8Array {
    return encoder.encode(`n,,${this.#clientFirstBare}`);
  }

  /** client-final-message in answer to the server-first-message of AUTH 0x18. */
  async clientFinal(serverFirstData: Uint8Array): Promise<Uint8Array> {
    const serverFirst = decoder.decode(serverFirstData);
    const fields = Object.fromEntries(serverFirst.split(",").map((f) => [f[0], f.slice(2)]));
    if (!fields.r?.startsWith(this.#clientNonce)) {
      throw new Error(`Server nonce does not extend ours: ${serverFirst}`);
    }
    const salt = Uint8Array.fromBase64(fields.s);
    const iterations = Number(fields.i);
    const passwordKey = await crypto.subtle.importKey(
      "raw",
      encoder.encode(this.#password),
      "PBKDF2",
      false,
      ["deriveBits"],
    );
    const salted = new Uint8Array(
      await crypto.subtle.deriveBits(
        { name: "PBKDF2", hash: "SHA-256", salt, iterations },
        passwordKey,
        256,
      ),
    );
    const clientKey = await hmac(salted, encoder.encode("Client Key"));
    const storedKey = new Uint8Array(
      await crypto.subtle.digest("SHA-256", clientKey as Uint8Array<ArrayBuffer>),
    );
    const serverKey = await hmac(salted, encoder.encode("Server Key"));
    const withoutProof = `c=${encoder.encode("n,,").toBase64()},r=${fields.r}`;
    const authMessage = encoder.encode(`${this.#clientFirstBare},${serverFirst},${withoutProof}`);
    const clientSignature = await hmac(storedKey, authMessage);
    const proof = clientKey.map((byte, i) => byte ^ clientSignature[i]);
    this.#serverSignature = await hmac(serverKey, authMessage);
    return encoder.encode(`${withoutProof},p=${proof.toBase64()}`);
  }

  /** Whether server-final-message (`v=...`) proves the server knows our verifier. */
  verifyServerFinal(data: Uint8Array | undefined): boolean {
    if (!data || !this.#serverSignature) return false;
    return decoder.decode(data) === `v=${this.#serverSignature.toBase64()}`;
  }
}
