/**
 * `deno task passwd`: manages a Perch password file (`username:SCRAM-SHA-256 verifier` lines).
 *
 * Usage:
 *   deno task passwd <file> add <user>      add a user (fails if it exists)
 *   deno task passwd <file> change <user>   change a user's password (fails if it is unknown)
 *   deno task passwd <file> remove <user>   remove a user
 *   deno task passwd <file> list            list the user names
 * Options: --iterations <n> (PBKDF2 iterations, default 100000, at least 4096).
 *
 * The password is never an argument (it would show in the process list): on a terminal it is
 * asked for twice without echo, otherwise the first line of standard input is used. A running
 * broker picks the change up by itself (file watch) or on SIGHUP.
 *
 * @module
 */

import { DEFAULT_SCRAM_ITERATIONS } from "../src/auth/credentials.ts";
import { PasswordFile, PasswordFileError } from "../src/auth/password_file.ts";

const USAGE = `Usage: deno task passwd <file> add|change|remove|list [<user>] [--iterations <n>]`;

/** Reads one line from stdin; on a terminal without echo. */
async function readPassword(prompt: string): Promise<string> {
  const terminal = Deno.stdin.isTerminal();
  if (terminal) {
    await Deno.stdout.write(new TextEncoder().encode(prompt));
    Deno.stdin.setRaw(true);
  }
  const bytes: number[] = [];
  const buffer = new Uint8Array(1);
  try {
    while (true) {
      const n = await Deno.stdin.read(buffer);
      if (n === null) break;
      const byte = buffer[0];
      if (byte === 0x0a || byte === 0x0d) break;
      if (terminal && byte === 0x03) throw new Error("Interrupted");
      if (terminal && byte === 0x7f) {
        bytes.pop();
        continue;
      }
      bytes.push(byte);
    }
  } finally {
    if (terminal) {
      Deno.stdin.setRaw(false);
      await Deno.stdout.write(new TextEncoder().encode("\n"));
    }
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

async function askNewPassword(): Promise<string> {
  const password = await readPassword("Password: ");
  if (Deno.stdin.isTerminal() && password !== await readPassword("Repeat password: ")) {
    throw new Error("The passwords do not match");
  }
  if (password === "") throw new Error("The password is empty");
  return password;
}

async function main(args: string[]): Promise<number> {
  let iterations = DEFAULT_SCRAM_ITERATIONS;
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--iterations") {
      iterations = Number(args[++i]);
      if (!Number.isInteger(iterations)) {
        console.error(`--iterations: expected an integer, got "${args[i]}"`);
        return 2;
      }
    } else if (args[i] === "-h" || args[i] === "--help") {
      console.log(USAGE);
      return 0;
    } else positional.push(args[i]);
  }
  const [path, command, username] = positional;
  const needsUser = command === "add" || command === "change" || command === "remove";
  if (!path || !["add", "change", "remove", "list"].includes(command) || needsUser !== !!username) {
    console.error(USAGE);
    return 2;
  }
  const file = new PasswordFile(path);
  await file.load({ allowMissing: command === "add" });
  switch (command) {
    case "list":
      for (const user of file.list()) console.log(user);
      return 0;
    case "remove":
      if (!file.remove(username)) {
        console.error(`User "${username}" is not in ${path}`);
        return 1;
      }
      await file.save();
      console.log(`Removed user "${username}"`);
      return 0;
    case "add":
    case "change": {
      if (command === "add" && file.has(username)) {
        console.error(`User "${username}" already exists in ${path}; use change`);
        return 1;
      }
      if (command === "change" && !file.has(username)) {
        console.error(`User "${username}" is not in ${path}; use add`);
        return 1;
      }
      await file.setPassword(username, await askNewPassword(), { iterations });
      await file.save();
      console.log(`${command === "add" ? "Added" : "Changed"} user "${username}"`);
      return 0;
    }
  }
  return 2;
}

try {
  Deno.exit(await main(Deno.args));
} catch (error) {
  if (
    error instanceof PasswordFileError || error instanceof TypeError || error instanceof RangeError
  ) {
    console.error(error.message);
  } else console.error((error as Error).message ?? String(error));
  Deno.exit(1);
}
