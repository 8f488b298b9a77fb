/**
 * The dashboard's static files as the admin API serves them: the redirects to `/dashboard/`,
 * content types, the Content Security Policy, revalidation with ETags, and requests for anything
 * outside the set of dashboard files (traversal, encoded slashes, other file types) refused.
 *
 * @module
 */

import assert from "node:assert/strict";
import { DASHBOARD_CSP } from "../../routes/dashboard.ts";
import { startAdmin } from "../helpers/admin.ts";

Deno.test("/ and /dashboard redirect to /dashboard/, which serves the page with a CSP", async () => {
  const t = await startAdmin({ http: true });
  try {
    for (const [path, status] of [["/", 302], ["/dashboard", 308]] as const) {
      const response = await t.fetch(path, { token: null, redirect: "manual" });
      await response.body?.cancel();
      assert.equal(response.status, status);
      assert.equal(response.headers.get("location"), "dashboard/");
      assert.equal(response.headers.get("content-security-policy"), DASHBOARD_CSP);
    }
    const followed = await t.fetch("/", { token: null });
    assert.equal(followed.url, `${t.url}/dashboard/`);
    assert.equal(followed.headers.get("content-type"), "text/html; charset=utf-8");
    assert.equal(followed.headers.get("content-security-policy"), DASHBOARD_CSP);
    assert.equal(followed.headers.get("x-content-type-options"), "nosniff");
    const html = await followed.text();
    assert.match(html, /<script type="module" src="js\/app.js"><\/script>/);
    // No inline script or style: the CSP would block it.
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/);
    assert.doesNotMatch(html, /<style|style="/);
  } finally {
    await t.close();
  }
});

Deno.test("dashboard files have their content types and revalidate with an ETag", async () => {
  const t = await startAdmin();
  try {
    const types = {
      "/dashboard/js/app.js": "text/javascript; charset=utf-8",
      "/dashboard/style.css": "text/css; charset=utf-8",
      "/dashboard/favicon.svg": "image/svg+xml",
      "/dashboard/index.html": "text/html; charset=utf-8",
    };
    for (const [path, type] of Object.entries(types)) {
      const response = await t.request(path, { token: null });
      assert.equal(response.status, 200, path);
      assert.equal(response.headers.get("content-type"), type, path);
      assert.equal(response.headers.get("cache-control"), "no-cache", path);
      const etag = response.headers.get("etag")!;
      assert.match(etag, /^"[\w-]+"$/);
      await response.body?.cancel();
      const again = await t.request(path, { token: null, headers: { "if-none-match": etag } });
      assert.equal(again.status, 304, path);
      assert.equal(await again.text(), "");
      const stale = await t.request(path, { token: null, headers: { "if-none-match": '"old"' } });
      assert.equal(stale.status, 200, path);
      await stale.body?.cancel();
    }
  } finally {
    await t.close();
  }
});

Deno.test("dashboard serves only its own files: traversal and unknown names get a JSON 404", async () => {
  const t = await startAdmin({ http: true });
  try {
    const outside = [
      "/dashboard/../deno.json",
      "/dashboard/%2e%2e/deno.json",
      "/dashboard/..%2fdeno.json",
      "/dashboard/js%2fapp.js",
      "/dashboard/js/../../routes/mod.ts",
      "/dashboard//etc/passwd",
      "/dashboard/%2Fetc%2Fpasswd",
      "/dashboard/js/",
      "/dashboard/nothing.html",
    ];
    for (const path of outside) {
      // Raw HTTP, so neither fetch nor URL parsing tidies the path first.
      const response = await rawGet(t.url!, path);
      assert.ok(
        response.startsWith("HTTP/1.1 404") || response.startsWith("HTTP/1.1 400"),
        `${path}: ${response.split("\r\n")[0]}`,
      );
      assert.doesNotMatch(response, /"imports"|createAdminApp|root:/, path);
    }
  } finally {
    await t.close();
  }
});

Deno.test("dashboard leaves out files of types it does not serve, hidden files and symlinks", async () => {
  const dir = await Deno.makeTempDir({ prefix: "perch_dashboard_files_" });
  const secret = await Deno.makeTempFile({ suffix: ".html" });
  const t = await startAdmin({ dashboardDir: new URL(`file://${dir}/`) });
  try {
    await Deno.writeTextFile(`${dir}/index.html`, "<!doctype html><title>x</title>");
    await Deno.writeTextFile(`${dir}/notes.txt`, "not served");
    await Deno.writeTextFile(`${dir}/.env.js`, "not served either");
    await Deno.writeTextFile(secret, "outside");
    await Deno.symlink(secret, `${dir}/linked.html`);
    assert.equal((await t.request("/dashboard/", { token: null })).status, 200);
    for (const name of ["notes.txt", "linked.html", ".env.js"]) {
      const response = await t.request(`/dashboard/${name}`, { token: null });
      assert.equal(response.status, 404, name);
      assert.deepEqual(await response.json(), {
        status: 404,
        message: `No dashboard file /dashboard/${name}`,
      });
    }
  } finally {
    await t.close();
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(secret);
  }
});

/** A GET with the path sent exactly as given; returns the head and body as text. */
async function rawGet(base: string, path: string): Promise<string> {
  const { hostname, port } = new URL(base);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  try {
    await conn.write(
      new TextEncoder().encode(
        `GET ${path} HTTP/1.1\r\nHost: ${hostname}\r\nConnection: close\r\n\r\n`,
      ),
    );
    return await new Response(conn.readable).text();
  } catch (error) {
    conn.close();
    throw error;
  }
}
