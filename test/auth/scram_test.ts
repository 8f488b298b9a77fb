import assert from "node:assert/strict";
import { deriveScramCredentials } from "../../src/auth/credentials.ts";
import type { AuthStep } from "../../src/auth/enhanced.ts";
import { createScramMethod } from "../../src/auth/scram.ts";
import type { ClientInfo } from "../../src/hooks/hooks.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const client: ClientInfo = {
  clientId: "c",
  username: undefined,
  remoteAddress: "127.0.0.1",
  remotePort: 1,
  protocolVersion: 5,
  transport: "tcp",
  peerCertificate: undefined,
};
// RFC 7677 section 3.
const rfcUser = await deriveScramCredentials("pencil", {
  salt: Uint8Array.fromBase64("W22ZaJ0SNY7soEsUEjb6gQ=="),
  iterations: 4096,
});
const method = createScramMethod({
  store: { scramCredentials: (username) => username === "user" ? rfcUser : undefined },
  serverNonce: () => "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
});

function data(step: AuthStep): string {
  assert.notEqual(step.kind, "failure", JSON.stringify(step));
  return decoder.decode((step as { data: Uint8Array }).data);
}

Deno.test("SCRAM-SHA-256 server reproduces the RFC 7677 example exchange byte for byte", async () => {
  const exchange = method();
  const first = await exchange.start(encoder.encode("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"), client);
  assert.equal(first.kind, "continue");
  assert.equal(
    data(first),
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
  );
  const final = await exchange.continue(
    encoder.encode(
      "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," +
        "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    ),
  );
  assert.equal(final.kind, "success");
  assert.equal(data(final), "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
  assert.equal((final as { username: string }).username, "user");
});

Deno.test("SCRAM-SHA-256 server refuses what it does not support or cannot parse", async () => {
  const cases: [string, RegExp][] = [
    ["p=tls-unique,,n=user,r=abc", /channel binding is not supported/],
    ["n,a=admin,n=user,r=abc", /authorization identities are not supported/],
    ["n,,m=ext,n=user,r=abc", /mandatory extensions/],
    ["n,,r=abc", /needs n= and r=/],
    ["n,,n=us=er,r=abc", /invalid user name/],
    ["n,,n=user,r=a b", /invalid client nonce/],
    ["hello", /no gs2 header/],
  ];
  for (const [message, reason] of cases) {
    const step = await method().start(encoder.encode(message), client);
    assert.equal(step.kind, "failure", message);
    assert.match((step as { reason: string }).reason, reason, message);
    assert.equal((step as { reasonCode: number }).reasonCode, 0x87);
  }
  assert.equal((await method().start(undefined, client)).kind, "failure");
});

Deno.test("SCRAM-SHA-256 server checks the client-final message's binding, nonce and proof", async () => {
  const nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
  const proof = "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
  const cases: [string, RegExp][] = [
    [`c=eSws,r=${nonce},${proof}`, /channel binding does not match/],
    [`c=biws,r=${nonce}x,${proof}`, /nonce does not match/],
    [`c=biws,r=${nonce}`, /no proof/],
    [`c=biws,r=${nonce},p=AAAA`, /proof is not 32 bytes/],
    [
      `c=biws,r=${nonce},p=${new Uint8Array(32).toBase64()}`,
      /Bad user name or password/,
    ],
  ];
  for (const [message, reason] of cases) {
    const exchange = method();
    await exchange.start(encoder.encode("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"), client);
    const step = await exchange.continue(encoder.encode(message));
    assert.equal(step.kind, "failure", message);
    assert.match((step as { reason: string }).reason, reason, message);
  }
  // A second client-final on a finished exchange is refused.
  const exchange = method();
  await exchange.start(encoder.encode("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"), client);
  await exchange.continue(encoder.encode(`c=biws,r=${nonce},${proof}`));
  assert.equal(
    (await exchange.continue(encoder.encode(`c=biws,r=${nonce},${proof}`))).kind,
    "failure",
  );
  assert.equal((await method().continue(encoder.encode("x"))).kind, "failure");
});
