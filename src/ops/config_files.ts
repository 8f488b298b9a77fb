/**
 * The files a configuration names, checked before anything starts: each one opened and parsed
 * (certificates and keys as PEM, a key matching its certificate, the password file, the ACL rules
 * file, JWT keys), and each one the admin API will write checked for being writable. Every problem
 * names the config key, so `--check-config` and a failed start say which setting to fix.
 *
 * @module
 */

import { createPrivateKey, createPublicKey, type KeyObject, X509Certificate } from "node:crypto";
import { readFile, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { parseAclFile } from "../auth/acl_file.ts";
import { parsePasswordFile } from "../auth/password_file.ts";
import type { Config } from "../config/mod.ts";
import type { ConfigIssue } from "../config/errors.ts";

/** Reads a file's text: the problem in words, or undefined when it is fine (may also throw one). */
type Check = (text: string, path: string) => string | undefined;

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * Every problem with the files `config` names.
 *
 * @returns One issue per problem, `path` being the config key; empty when all is well
 */
export async function checkConfigFiles(config: Config): Promise<ConfigIssue[]> {
  const issues: ConfigIssue[] = [];
  /** The text of every file that was read and passed its check, by config key. */
  const good = new Map<string, string>();
  const read = async (key: string, path: string | undefined, check: Check) => {
    if (path === undefined) return;
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (error) {
      issues.push({ path: key, message: `${path}: cannot read the file: ${reason(error)}` });
      return;
    }
    let problem: string | undefined;
    try {
      problem = check(text, path);
    } catch (error) {
      problem = reason(error); // The file parsers name the file and line themselves.
    }
    if (problem) issues.push({ path: key, message: problem });
    else good.set(key, text);
  };
  /** A private key must belong to the (first) certificate named by `certKey`. */
  const pair = (certKey: string, keyKey: string) => {
    const cert = good.get(certKey);
    const key = good.get(keyKey);
    if (cert === undefined || key === undefined) return;
    const first = new X509Certificate(cert.match(PEM_CERTIFICATE)![0]);
    if (!first.checkPrivateKey(createPrivateKey(key))) {
      issues.push({ path: keyKey, message: `does not match the certificate of ${certKey}` });
    }
  };

  const { tls, wss } = config.listeners;
  if (tls.enabled) {
    await read("listeners.tls.cert", tls.cert, certificateProblem);
    await read("listeners.tls.key", tls.key, privateKeyProblem);
    pair("listeners.tls.cert", "listeners.tls.key");
    if (tls.requestClientCert) await read("listeners.tls.ca", tls.ca, certificateProblem);
  }
  if (wss.enabled) {
    await read("listeners.wss.cert", wss.cert, certificateProblem);
    await read("listeners.wss.key", wss.key, privateKeyProblem);
    pair("listeners.wss.cert", "listeners.wss.key");
  }
  const admin = config.admin;
  if (admin.enabled && admin.tls.cert !== undefined) {
    await read("admin.tls.cert", admin.tls.cert, certificateProblem);
    await read("admin.tls.key", admin.tls.key, privateKeyProblem);
    pair("admin.tls.cert", "admin.tls.key");
  }
  const kafka = config.bridge.kafka;
  if (kafka.brokers.length > 0 && kafka.tls.enabled) {
    await read("bridge.kafka.tls.ca", kafka.tls.ca, certificateProblem);
    await read("bridge.kafka.tls.cert", kafka.tls.cert, certificateProblem);
    await read("bridge.kafka.tls.key", kafka.tls.key, privateKeyProblem);
    pair("bridge.kafka.tls.cert", "bridge.kafka.tls.key");
  }

  const auth = config.auth;
  const passwordFile = auth.chain.includes("passwordFile") ? auth.passwordFile.path : undefined;
  await read("auth.passwordFile.path", passwordFile, (text, path) => {
    parsePasswordFile(text, path);
    return undefined;
  });
  if (auth.chain.includes("jwt")) {
    await read("auth.jwt.publicKeyFile", auth.jwt.publicKeyFile, publicKeyProblem);
    await read("auth.jwt.jwksFile", auth.jwt.jwksFile, jwksProblem);
  }
  await read("acl.file", config.acl.file, (text, path) => {
    parseAclFile(text, path);
    return undefined;
  });

  // The admin API saves these (users, ACL rules) by writing a new file next to the old one.
  if (admin.enabled) {
    const saved: [string, string | undefined][] = [
      ["auth.passwordFile.path", passwordFile],
      ["acl.file", config.acl.file],
    ];
    for (const [key, path] of saved) {
      if (path === undefined || !good.has(key)) continue;
      const problem = await writeProblem(path);
      if (problem) issues.push({ path: key, message: `${path}: ${problem}` });
    }
  }
  return issues;
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function certificateProblem(text: string, path: string): string | undefined {
  const blocks = text.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) return `${path}: no PEM certificate (-----BEGIN CERTIFICATE-----)`;
  for (let i = 0; i < blocks.length; i++) {
    try {
      new X509Certificate(blocks[i]);
    } catch (error) {
      return `${path}: certificate ${i + 1} does not parse: ${reason(error)}`;
    }
  }
  return undefined;
}

function keyProblem(make: () => KeyObject, what: string, path: string): string | undefined {
  try {
    make();
    return undefined;
  } catch (error) {
    return `${path}: not a PEM ${what}: ${reason(error)}`;
  }
}

function privateKeyProblem(text: string, path: string): string | undefined {
  return keyProblem(() => createPrivateKey(text), "private key", path);
}

function publicKeyProblem(text: string, path: string): string | undefined {
  return keyProblem(() => createPublicKey(text), "public key", path);
}

function jwksProblem(text: string, path: string): string | undefined {
  try {
    const jwks = JSON.parse(text);
    return Array.isArray(jwks?.keys) ? undefined : `${path}: expected JSON {"keys": [...]}`;
  } catch (error) {
    return `${path}: not JSON: ${reason(error)}`;
  }
}

/**
 * Why a file cannot be replaced the way the admin API saves it (a temporary file in its folder,
 * renamed over it), or undefined when it can.
 */
async function writeProblem(path: string): Promise<string | undefined> {
  const folder = dirname(path);
  // Deno runs with permissions (deno task start grants writes); other runtimes have none to ask.
  const permission = await globalThis.Deno?.permissions.query({ name: "write", path: folder });
  if (permission !== undefined && permission.state !== "granted") {
    return `not writable: Deno has no write permission for ${folder} (run with --allow-write, as deno task start does)`;
  }
  const probe = join(folder, `.perch-write-check-${crypto.randomUUID()}`);
  try {
    await writeFile(probe, "", { flag: "wx" });
  } catch (error) {
    return `not writable: cannot create a file in ${folder}: ${reason(error)}`;
  }
  await rm(probe);
  return undefined;
}
