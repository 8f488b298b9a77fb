/**
 * Headless Chromium from Debian (`/usr/bin/chromium`, or `PERCH_CHROMIUM`) driven over CDP with
 * puppeteer-core, which never downloads a browser. Each launch gets a fresh temp profile, and the
 * flags that keep Chromium from reaching for the network (this machine has none).
 *
 * @module
 */

import puppeteer, { type Browser, type Page } from "puppeteer-core";

/** The Chromium the tests drive. */
export const CHROMIUM_PATH = Deno.env.get("PERCH_CHROMIUM") ?? "/usr/bin/chromium";

const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** A running browser and the temp profile it owns. */
export interface TestBrowser {
  browser: Browser;
  close(): Promise<void>;
}

/** Launches headless Chromium with a fresh profile in a temp dir. */
export async function launchBrowser(): Promise<TestBrowser> {
  const profile = await Deno.makeTempDir({ prefix: "perch_chromium_" });
  let browser: Browser;
  try {
    browser = await puppeteer.launch({
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: [...CHROMIUM_FLAGS, `--user-data-dir=${profile}`],
      defaultViewport: { width: 1280, height: 860 },
    });
  } catch (error) {
    await Deno.remove(profile, { recursive: true });
    throw error;
  }
  return {
    browser,
    async close() {
      await browser.close();
      await Deno.remove(profile, { recursive: true });
    },
  };
}

/** How Chromium logs an HTTP error reply; the pages show those themselves. */
const HTTP_ERROR_LOG = /^Failed to load resource: the server responded with a status of 4\d\d/;

/**
 * A page in a fresh browser context (its own session storage), whose script errors and console
 * errors (a CSP violation is one) are collected in `problems`; API replies of 4xx, which the
 * pages show, are not problems. Dialogs (`confirm`) are accepted.
 */
export async function openPage(
  browser: Browser,
): Promise<{ page: Page; problems: string[]; close(): Promise<void> }> {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  // A guard against a hang, not a measure: the machine may be busy with other work.
  page.setDefaultTimeout(30_000);
  const problems: string[] = [];
  page.on("pageerror", (error) => problems.push(`page error: ${error}`));
  page.on("console", (message) => {
    if (message.type() === "error" && !HTTP_ERROR_LOG.test(message.text())) {
      problems.push(`console error: ${message.text()}`);
    }
  });
  page.on("dialog", (dialog) => dialog.accept());
  return { page, problems, close: () => context.close() };
}
