/**
 * `deno task screenshots [dir]`: a screenshot of each page of the dashboard, taken by headless
 * Chromium (`/usr/bin/chromium`, or `PERCH_CHROMIUM`) over a broker with demo data, written to
 * `docs/dashboard/` (or `dir`) for people to look at.
 *
 * @module
 */

import { launchBrowser } from "../test/helpers/browser.ts";
import { takeScreenshots } from "../test/helpers/dashboard.ts";

const dir = Deno.args[0] ?? new URL("../docs/dashboard/", import.meta.url).pathname;
await Deno.mkdir(dir, { recursive: true });
const chromium = await launchBrowser();
try {
  // Half a minute of samples, so the charts show a stretch of line rather than a dot.
  const files = await takeScreenshots(chromium.browser, dir, { chartPoints: 30 });
  console.log(`Wrote ${files.length} screenshots to ${dir}: ${files.join(", ")}`);
} finally {
  await chromium.close();
}
