/**
 * Test certificates made with openssl at test time, in a temp dir that is removed afterwards.
 *
 * @module
 */

/** A self-signed certificate for "localhost" and 127.0.0.1, made by openssl in a temp dir. */
export async function selfSignedCertificate(): Promise<{ cert: string; key: string }> {
  const dir = await Deno.makeTempDir({ prefix: "perch_tls_test_" });
  try {
    const certPath = `${dir}/cert.pem`;
    const keyPath = `${dir}/key.pem`;
    const { success, stderr } = await new Deno.Command("openssl", {
      args: [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
        // openssl marks a self-signed certificate as a CA by default, and rustls (Deno's TLS)
        // refuses a CA certificate as the server's own: "CaUsedAsEndEntity".
        "-addext",
        "basicConstraints=critical,CA:FALSE",
        "-days",
        "1",
        "-keyout",
        keyPath,
        "-out",
        certPath,
      ],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!success) {
      throw new Error(`Cannot create a test certificate: ${new TextDecoder().decode(stderr)}`);
    }
    return { cert: await Deno.readTextFile(certPath), key: await Deno.readTextFile(keyPath) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
