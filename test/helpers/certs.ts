/**
 * Test certificates made with `openssl` at test time in a temporary folder: a self-signed server
 * certificate, or a CA with a server certificate for localhost/127.0.0.1, client certificates
 * signed by the CA, and a client certificate from an unrelated CA. X.509 v3 throughout (rustls
 * refuses v1 certificates).
 *
 * @module
 */

export interface CertFiles {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  /** Signed by the CA, subject CN given to `makeCerts` (default `device-42`). */
  clientCert: string;
  clientKey: string;
  /** Signed by another CA that the server does not trust. */
  strangerCert: string;
  strangerKey: string;
  /** Removes the folder. */
  remove(): Promise<void>;
}

async function openssl(dir: string, args: string[]): Promise<void> {
  const { code, stderr } = await new Deno.Command("openssl", {
    args,
    cwd: dir,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(stderr)}`);
  }
}

/** A self-signed certificate `${name}.crt` with its key `${name}.key`, with extra `-addext`s. */
async function makeSelfSigned(
  dir: string,
  options: { name: string; subject: string; extensions: string[] },
): Promise<void> {
  const { name, subject, extensions } = options;
  await openssl(dir, [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.crt`,
    "-days",
    "2",
    "-subj",
    subject,
    ...extensions.flatMap((extension) => ["-addext", extension]),
  ]);
}

function makeCa(dir: string, name: string, subject: string): Promise<void> {
  return makeSelfSigned(dir, {
    name,
    subject,
    extensions: ["basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign,cRLSign"],
  });
}

async function makeLeaf(
  dir: string,
  options: { name: string; ca: string; subject: string; extensions: string },
): Promise<void> {
  const { name, ca, subject, extensions } = options;
  await Deno.writeTextFile(`${dir}/${name}.ext`, extensions);
  await openssl(dir, [
    "req",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.csr`,
    "-subj",
    subject,
  ]);
  await openssl(dir, [
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    `${ca}.crt`,
    "-CAkey",
    `${ca}.key`,
    "-CAcreateserial",
    "-out",
    `${name}.crt`,
    "-days",
    "2",
    "-extfile",
    `${name}.ext`,
  ]);
}

const CLIENT_EXTENSIONS =
  "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n";

/** Generates the certificates; call `remove()` when done. */
export async function makeCerts(options: { clientCommonName?: string } = {}): Promise<CertFiles> {
  const dir = await Deno.makeTempDir({ prefix: "perch-certs-" });
  await makeCa(dir, "ca", "/CN=Perch Test CA");
  await makeCa(dir, "other-ca", "/CN=Unrelated CA");
  await makeLeaf(dir, {
    name: "server",
    ca: "ca",
    subject: "/CN=localhost",
    extensions:
      "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
  });
  await makeLeaf(dir, {
    name: "client",
    ca: "ca",
    subject: `/O=Acme/CN=${options.clientCommonName ?? "device-42"}`,
    extensions: CLIENT_EXTENSIONS,
  });
  await makeLeaf(dir, {
    name: "stranger",
    ca: "other-ca",
    subject: "/CN=stranger",
    extensions: CLIENT_EXTENSIONS,
  });
  const read = (file: string) => Deno.readTextFile(`${dir}/${file}`);
  return {
    dir,
    caCert: await read("ca.crt"),
    serverCert: await read("server.crt"),
    serverKey: await read("server.key"),
    clientCert: await read("client.crt"),
    clientKey: await read("client.key"),
    strangerCert: await read("stranger.crt"),
    strangerKey: await read("stranger.key"),
    remove: () => Deno.remove(dir, { recursive: true }),
  };
}

/** A self-signed certificate for "localhost" and 127.0.0.1 (the folder is removed afterwards). */
export async function selfSignedCertificate(): Promise<{ cert: string; key: string }> {
  const dir = await Deno.makeTempDir({ prefix: "perch-certs-" });
  try {
    await makeSelfSigned(dir, {
      name: "server",
      subject: "/CN=localhost",
      extensions: [
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
        // openssl marks a self-signed certificate as a CA by default, and rustls (Deno's TLS)
        // refuses a CA certificate as the server's own: "CaUsedAsEndEntity".
        "basicConstraints=critical,CA:FALSE",
      ],
    });
    return {
      cert: await Deno.readTextFile(`${dir}/server.crt`),
      key: await Deno.readTextFile(`${dir}/server.key`),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
