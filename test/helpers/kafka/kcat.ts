/**
 * Runs `kcat` (Debian package `kcat`, librdkafka underneath) against a Kafka test server: a client
 * nobody here wrote, to read back what a producer sent and to produce from outside.
 *
 * @module
 */

import type { KafkaTestServer } from "./server.ts";

/** What a kcat run printed and how it ended. */
export interface KcatResult {
  success: boolean;
  code: number;
  stdout: string;
  stderr: string;
}

/** Longest a kcat run may take before it is killed (a guard against a hang, never a delay). */
const KCAT_GUARD_MS = 30_000;

/**
 * Runs `kcat -b <server> ...args`, writing `input` to its stdin when given, and resolves once it has
 * exited. A run still going after 30 s is killed, so a hang fails the test instead of stalling it.
 */
export async function kcat(
  server: KafkaTestServer,
  args: string[],
  options: { input?: string; sasl?: { mechanism: string; user: string; password: string } } = {},
): Promise<KcatResult> {
  const saslArgs = options.sasl
    ? [
      "-X",
      "security.protocol=SASL_PLAINTEXT",
      "-X",
      `sasl.mechanisms=${options.sasl.mechanism}`,
      "-X",
      `sasl.username=${options.sasl.user}`,
      "-X",
      `sasl.password=${options.sasl.password}`,
    ]
    : [];
  const child = new Deno.Command("kcat", {
    args: ["-b", server.bootstrap, ...saslArgs, ...args],
    stdin: options.input === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const guard = setTimeout(() => child.kill("SIGKILL"), KCAT_GUARD_MS);
  try {
    if (options.input !== undefined) {
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode(options.input));
      await writer.close();
    }
    const { code, stdout, stderr } = await child.output();
    const decoder = new TextDecoder();
    return {
      success: code === 0,
      code,
      stdout: decoder.decode(stdout),
      stderr: decoder.decode(stderr),
    };
  } finally {
    clearTimeout(guard);
  }
}

/**
 * Reads one partition from the beginning to its end with `kcat -C -e`, one line per record in
 * `format` (kcat's `-f` tokens: %k key, %s value, %h headers as n=v CSV, %o offset, ...).
 */
export async function kcatConsume(
  server: KafkaTestServer,
  topic: string,
  partition: number,
  format = "%k %s %h\\n",
): Promise<string[]> {
  const result = await kcat(server, [
    "-C",
    "-t",
    topic,
    "-p",
    String(partition),
    "-o",
    "beginning",
    "-e",
    "-q",
    "-f",
    format,
  ]);
  if (!result.success) throw new Error(`kcat -C failed (${result.code}): ${result.stderr}`);
  return result.stdout.split("\n").slice(0, -1);
}
