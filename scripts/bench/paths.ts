/**
 * Filesystem locations the benchmark uses, resolved from this file so any working directory works.
 *
 * @module
 */

import { fileURLToPath } from "node:url";

/** The repository root. */
export const REPO_ROOT: string = fileURLToPath(new URL("../../", import.meta.url)).replace(
  /\/$/,
  "",
);

/** The npm project that pins Aedes. */
export const AEDES_DIR: string = `${REPO_ROOT}/scripts/bench/aedes`;

/** Default parent folder of result folders. */
export const RESULTS_DIR: string = `${REPO_ROOT}/bench-results`;
