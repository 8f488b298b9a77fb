/**
 * Writing a file so that a reader sees the old text or the new, never a part: the text goes to a
 * temporary file in the same folder, which is then renamed over the target.
 *
 * @module
 */

import { rename, rm, writeFile } from "node:fs/promises";

/** Writes `text` to `path` atomically; `mode` sets the permissions of a new file. */
export async function writeFileAtomically(
  path: string,
  text: string,
  options: { mode?: number } = {},
): Promise<void> {
  const temporary = `${path}.${crypto.randomUUID()}.tmp`;
  await writeFile(temporary, text, options);
  try {
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary).catch(() => {});
    throw error;
  }
}
