/**
 * Keeps the Markdown documentation (README.md, docs/, and every other `.md` file of the
 * repository) true to its sources and readable:
 *
 * - the config reference in docs/configuration.md is generated from the config schema, so it
 *   cannot drift from it: `deno task docs` rewrites it;
 * - a code span never breaks across lines (a `` ` `` that opens on one line closes on it);
 * - every relative link names a file or folder that exists, and every `#anchor` a heading.
 *
 * `--check` (part of `deno task check`) writes nothing and exits 1 listing every problem.
 *
 * @module
 */

import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describeConfig } from "../src/config/mod.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** The page whose marked section holds the generated config reference. */
export const CONFIG_DOC = "docs/configuration.md";

const START = "<!-- config-reference:start -->";
const END = "<!-- config-reference:end -->";

/** Folders never searched for Markdown files (dependencies, generated output). */
const SKIPPED_DIRS: ReadonlySet<string> = new Set([".git", "node_modules", "bench-results"]);

/** The config reference as a Markdown table. */
export function configReferenceTable(): string {
  const cell = (text: string) => text.replaceAll("|", "\\|").replaceAll("\n", " ");
  const rows = describeConfig().map((entry) =>
    `| \`${entry.path}\` | ${cell(entry.type)} | ${
      entry.default === undefined ? "" : `\`${cell(entry.default)}\``
    } | ${cell(entry.description)} |`
  );
  return ["| Key | Type | Default | Description |", "| --- | --- | --- | --- |", ...rows].join(
    "\n",
  );
}

/**
 * The configuration page with its generated section replaced.
 *
 * @throws {Error} When the page lacks the start and end markers.
 */
export function renderConfigDoc(page: string): string {
  const start = page.indexOf(START);
  const end = page.indexOf(END);
  if (start < 0 || end < start) {
    throw new Error(`${CONFIG_DOC} lacks the ${START} ... ${END} markers`);
  }
  return `${page.slice(0, start + START.length)}\n${configReferenceTable()}\n${page.slice(end)}`;
}

/** Table layout aside (`deno fmt` pads cells), is the page's generated part current? */
export function isConfigDocCurrent(page: string): boolean {
  const normalize = (text: string) =>
    text.split("\n").map((line) =>
      line.startsWith("|") ? line.replace(/\s+/g, " ").replace(/-{3,}/g, "---") : line
    ).filter((line) => line.trim() !== "").join("\n");
  return normalize(renderConfigDoc(page)) === normalize(page);
}

/** A problem found in one Markdown file. */
export interface DocProblem {
  /** 1-based line number. */
  line: number;
  message: string;
}

/** One line of a Markdown file, with whether it lies inside a fenced code block. */
interface MarkdownLine {
  text: string;
  /** 1-based line number. */
  number: number;
  /** Inside a fenced code block, fences included. */
  fenced: boolean;
}

function markdownLines(markdown: string): MarkdownLine[] {
  const out: MarkdownLine[] = [];
  let fence: string | undefined;
  markdown.split("\n").forEach((text, i) => {
    const opener = /^\s*(`{3,}|~{3,})/.exec(text);
    if (fence === undefined && opener) {
      fence = opener[1];
      out.push({ text, number: i + 1, fenced: true });
      return;
    }
    if (fence !== undefined) {
      const closer = /^\s*(`{3,}|~{3,})\s*$/.exec(text);
      if (closer && closer[1][0] === fence[0] && closer[1].length >= fence.length) {
        fence = undefined;
      }
      out.push({ text, number: i + 1, fenced: true });
      return;
    }
    out.push({ text, number: i + 1, fenced: false });
  });
  return out;
}

/** Where the closing backtick run of a code span opening with `run` backticks starts, or -1. */
function closingRun(line: string, from: number, run: number): number {
  let j = from;
  while (j < line.length) {
    if (line[j] !== "`") {
      j++;
      continue;
    }
    let other = 1;
    while (line[j + other] === "`") other++;
    // The span closes at the next run of exactly as many backticks [CommonMark 6.1].
    if (other === run) return j;
    j += other;
  }
  return -1;
}

/**
 * A line's text outside code spans (each span replaced by a space), and the backtick run of a
 * span left open at its end. `carried` is the run of a span left open by the line before.
 */
function scanCodeSpans(
  line: string,
  carried = 0,
): { prose: string; openRun: number; openText: string } {
  let prose = "";
  let i = 0;
  if (carried > 0) {
    const close = closingRun(line, 0, carried);
    if (close < 0) return { prose, openRun: carried, openText: line };
    i = close + carried;
  }
  while (i < line.length) {
    const char = line[i];
    if (char === "\\" && i + 1 < line.length) {
      prose += line.slice(i, i + 2);
      i += 2;
      continue;
    }
    if (char !== "`") {
      prose += char;
      i++;
      continue;
    }
    let run = 1;
    while (line[i + run] === "`") run++;
    const close = closingRun(line, i + run, run);
    if (close < 0) return { prose, openRun: run, openText: line.slice(i) };
    prose += " ";
    i = close + run;
  }
  return { prose, openRun: 0, openText: "" };
}

/**
 * Code spans that open on one line and close on a later one. Markdown joins such a span's lines,
 * but the source reads badly and a search for the code misses it. Fenced code blocks are skipped;
 * a span still open at a blank line is not one (its backticks are literal text) but is reported
 * all the same, as the writer surely meant a span.
 */
export function brokenCodeSpans(markdown: string): DocProblem[] {
  const problems: DocProblem[] = [];
  let carried = 0;
  for (const line of markdownLines(markdown)) {
    if (line.fenced || line.text.trim() === "") {
      carried = 0;
      continue;
    }
    const wasOpen = carried > 0;
    const { openRun, openText } = scanCodeSpans(line.text, carried);
    if (openRun > 0 && !(wasOpen && openText === line.text)) {
      const shown = openText.length > 40 ? `${openText.slice(0, 40)}...` : openText;
      problems.push({ line: line.number, message: `code span not closed on its line: ${shown}` });
    }
    carried = openRun;
  }
  return problems;
}

/** A link target written in a Markdown file. */
export interface MarkdownLink {
  /** 1-based line number. */
  line: number;
  target: string;
}

/**
 * Inline link and image targets (`[text](target)`, `![alt](target "title")`) and link reference
 * definitions (`[label]: target`), outside code spans and fenced code blocks.
 */
export function markdownLinks(markdown: string): MarkdownLink[] {
  const links: MarkdownLink[] = [];
  let previousBlank = true;
  for (const line of markdownLines(markdown)) {
    const startsBlock = previousBlank;
    previousBlank = line.text.trim() === "";
    if (line.fenced) continue;
    const { prose } = scanCodeSpans(line.text);
    for (const match of prose.matchAll(/\]\(\s*(<[^>]*>|[^\s)]+)(?:\s+"[^"]*")?\s*\)/g)) {
      links.push({ line: line.number, target: match[1].replace(/^<|>$/g, "") });
    }
    // A definition cannot interrupt a paragraph: `[MQTT-4.7.2-1]: ...` inside one is text.
    const definition = startsBlock ? /^ {0,3}\[[^\]]+\]:\s*(\S+)/.exec(prose) : null;
    if (definition) links.push({ line: line.number, target: definition[1] });
  }
  return links;
}

/** GitHub's anchors for a page's headings (lower case, punctuation dropped, `-` for spaces). */
export function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of markdownLines(markdown)) {
    if (line.fenced) continue;
    const heading = /^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line.text);
    if (!heading) continue;
    const base = heading[1].toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/\s/g, "-");
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count === 0 ? base : `${base}-${count}`);
  }
  return anchors;
}

/** Whether a link target leaves the repository (a URL with a scheme, or protocol-relative). */
function isExternal(target: string): boolean {
  return /^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith("//");
}

async function statOrUndefined(path: string): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.stat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

/**
 * Relative links of one Markdown file that name no existing file or folder, or an anchor that no
 * heading of the linked Markdown page makes.
 *
 * @param file Absolute path of the Markdown file; relative targets resolve from its folder.
 * @param markdown Its text.
 */
export async function brokenLinks(file: string, markdown: string): Promise<DocProblem[]> {
  const problems: DocProblem[] = [];
  for (const { line, target } of markdownLinks(markdown)) {
    if (isExternal(target)) continue;
    const hash = target.indexOf("#");
    let pathPart: string;
    try {
      pathPart = decodeURI(hash < 0 ? target : target.slice(0, hash));
    } catch {
      problems.push({ line, message: `link with a malformed escape: ${target}` });
      continue;
    }
    const anchor = hash < 0 ? undefined : target.slice(hash + 1);
    const resolved = pathPart === "" ? file : resolve(dirname(file), pathPart);
    const info = pathPart === "" ? { isFile: true } : await statOrUndefined(resolved);
    if (!info) {
      problems.push({ line, message: `link to a missing file: ${target}` });
      continue;
    }
    if (anchor === undefined || anchor === "" || !info.isFile || !resolved.endsWith(".md")) {
      continue;
    }
    const page = resolved === file ? markdown : await Deno.readTextFile(resolved);
    let decoded: string;
    try {
      decoded = decodeURIComponent(anchor);
    } catch {
      decoded = anchor;
    }
    if (!headingAnchors(page).has(decoded)) {
      problems.push({ line, message: `link to a missing heading: ${target}` });
    }
  }
  return problems;
}

/** Every Markdown file of the repository below `root`, as absolute paths, sorted. */
export async function markdownFiles(root: string = ROOT): Promise<string[]> {
  const files: string[] = [];
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(dir)) {
      const path = join(dir, entry.name);
      if (entry.isDirectory && !SKIPPED_DIRS.has(entry.name)) await walk(path);
      else if (entry.isFile && entry.name.endsWith(".md")) files.push(path);
    }
  };
  await walk(root);
  return files.sort();
}

/**
 * Every problem of the repository's Markdown files, as `path:line: message` lines: a stale config
 * reference, broken code spans, broken relative links.
 */
export async function checkDocs(root: string = ROOT): Promise<string[]> {
  const out: string[] = [];
  const configDoc = await Deno.readTextFile(join(root, CONFIG_DOC));
  if (!isConfigDocCurrent(configDoc)) {
    out.push(`${CONFIG_DOC}: the config reference is stale: run \`deno task docs\``);
  }
  for (const file of await markdownFiles(root)) {
    const markdown = await Deno.readTextFile(file);
    const problems = [...brokenCodeSpans(markdown), ...await brokenLinks(file, markdown)];
    problems.sort((a, b) => a.line - b.line);
    for (const problem of problems) {
      out.push(`${relative(root, file)}:${problem.line}: ${problem.message}`);
    }
  }
  return out;
}

if (import.meta.main) {
  if (Deno.args.includes("--check")) {
    const problems = await checkDocs();
    if (problems.length > 0) {
      for (const problem of problems) console.error(problem);
      Deno.exit(1);
    }
  } else {
    const path = join(ROOT, CONFIG_DOC);
    const current = await Deno.readTextFile(path);
    if (!isConfigDocCurrent(current)) {
      await Deno.writeTextFile(path, renderConfigDoc(current));
      await new Deno.Command(Deno.execPath(), { args: ["fmt", "-q", path] }).output();
      console.log(`${CONFIG_DOC} updated`);
    }
    const problems = await checkDocs();
    for (const problem of problems) console.error(problem);
    if (problems.length > 0) Deno.exit(1);
  }
}
