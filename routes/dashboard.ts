/**
 * The dashboard: the static files of `dashboard/` (plain ES modules, no build step) at
 * `/dashboard/`, with `/` and `/dashboard` redirecting there. The files are read into memory on the
 * first request and only those exact paths are served, so no request path can reach another file
 * (`..`, encoded slashes, symlinks, hidden files: none of them is a name in the set). Every reply carries a
 * Content Security Policy that allows scripts, styles and API calls from this origin only, and an
 * ETag with `Cache-Control: no-cache`: the names are not fingerprinted, so browsers revalidate and
 * get a 304 while the files are unchanged. The files are public; the data comes from the API,
 * which asks for a token.
 *
 * @module
 */

import { readdir, readFile } from "node:fs/promises";
import { type Context, Hono } from "hono";
import type { Logger } from "../src/mod.ts";
import { type AdminEnv, problem } from "./_common.ts";

/** Where the dashboard's files are, next to `routes/`. */
export const DASHBOARD_DIR: URL = new URL("../dashboard/", import.meta.url);

/** What the dashboard's pages may load and talk to: this origin only, no inline code. */
export const DASHBOARD_CSP: string = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** The file types served, by extension; files of other types are left out. */
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
};

interface StaticFile {
  body: Uint8Array<ArrayBuffer>;
  contentType: string;
  etag: string;
}

/** Every servable file under `root`, keyed by its path relative to it (`js/app.js`). */
async function readFiles(root: URL): Promise<Map<string, StaticFile>> {
  const files = new Map<string, StaticFile>();
  const walk = async (dir: URL, prefix: string) => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (entry.isDirectory() && !entry.name.startsWith(".")) {
        await walk(new URL(`${entry.name}/`, dir), `${prefix}${entry.name}/`);
        continue;
      }
      const contentType = CONTENT_TYPES[extensionOf(entry.name)];
      if (!entry.isFile() || contentType === undefined || entry.name.startsWith(".")) continue;
      const body = new Uint8Array(await readFile(new URL(entry.name, dir)));
      const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", body));
      const etag = `"${digest.subarray(0, 12).toBase64({ alphabet: "base64url" })}"`;
      files.set(`${prefix}${entry.name}`, { body, contentType, etag });
    }
  };
  await walk(root, "");
  return files;
}

function extensionOf(name: string): string {
  const dot = name.lastIndexOf(".");
  return dot <= 0 ? "" : name.slice(dot).toLowerCase();
}

/** True when an `If-None-Match` header names `etag` (or is `*`). */
function matchesEtag(ifNoneMatch: string | undefined, etag: string): boolean {
  if (ifNoneMatch === undefined) return false;
  return ifNoneMatch.split(",").some((tag) => {
    const trimmed = tag.trim();
    return trimmed === "*" || trimmed === etag || trimmed === `W/${etag}`;
  });
}

/** The headers of every dashboard reply (set per route: a `*` middleware would reach the API). */
function setPageHeaders(c: Context<AdminEnv>): void {
  c.header("Content-Security-Policy", DASHBOARD_CSP);
  c.header("X-Content-Type-Options", "nosniff");
  c.header("Referrer-Policy", "no-referrer");
}

/** What the dashboard routes need. */
export interface DashboardDeps {
  /** The folder of the dashboard's files; {@linkcode DASHBOARD_DIR} by default. */
  dir?: URL;
  logger: Logger;
}

/** The dashboard's routes: the redirects and the files under `/dashboard/`. */
export function dashboardRoutes(deps: DashboardDeps) {
  const app = new Hono<AdminEnv>();
  const dir = deps.dir ?? DASHBOARD_DIR;
  let files: Promise<Map<string, StaticFile>> | undefined;
  const loadFiles = () =>
    files ??= readFiles(dir).catch((error) => {
      deps.logger.warn("dashboard files cannot be read: the dashboard is off", {
        dir: dir.href,
        error,
      });
      return new Map<string, StaticFile>();
    });

  // Relative locations, so the redirects also work behind a proxy that serves us under a prefix.
  app.get("/", (c) => {
    setPageHeaders(c);
    return c.redirect("dashboard/", 302);
  });
  app.get("/dashboard", (c) => {
    setPageHeaders(c);
    return c.redirect("dashboard/", 308);
  });
  app.get("/dashboard/*", async (c) => {
    setPageHeaders(c);
    const name = c.req.path.slice("/dashboard/".length) || "index.html";
    const file = (await loadFiles()).get(name);
    if (!file) return problem(c, 404, `No dashboard file ${c.req.path}`);
    c.header("ETag", file.etag);
    c.header("Cache-Control", "no-cache");
    if (matchesEtag(c.req.header("if-none-match"), file.etag)) return c.body(null, 304);
    return c.body(file.body, 200, { "Content-Type": file.contentType });
  });
  return app;
}
