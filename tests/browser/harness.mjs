// The browser tests' harness: the real `eportfolio` binary serving its demonstration centre from
// a fresh data dir (its own embedded PostgreSQL), Debian's Chromium driven by playwright-core,
// a screenshot of every step kept under target/browser-artifacts/, and axe-core run on every
// page a journey visits.

import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");
const require = createRequire(import.meta.url);
export const artifacts = join(root, "target/browser-artifacts");
/** The HTML of every page checked, for the Nu HTML Checker. */
const pages = join(artifacts, "html");
export const demoFile = (name) => join(root, "demo/files", name);

const AXE = require.resolve("axe-core/axe.min.js");
/** WCAG 2.2 A and AA, as axe-core tags them. */
const WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"];

function freePort() {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });
}

/** Starts `eportfolio serve --demo` on a free port; resolves with its address and the logins it printed. */
export async function startServer() {
  const binary = process.env.EPORTFOLIO_BIN || join(root, "target/debug/eportfolio");
  const dataDir = mkdtempSync(join(tmpdir(), "epf-browser-"));
  const port = await freePort();
  const env = { ...process.env, EPORTFOLIO_DATA_DIR: dataDir, RUST_LOG: "warn" };
  delete env.DATABASE_URL;
  const child = spawn(binary, ["--addr", `127.0.0.1:${port}`, "serve", "--demo"], { env });
  const logins = [];
  let output = "";
  await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`the server did not start:\n${output}`)), 120_000);
    child.stderr.on("data", (chunk) => { output += chunk; });
    child.stdout.on("data", (chunk) => {
      output += chunk;
      for (const line of String(chunk).split("\n")) {
        const login = line.match(/^\s+(\w+)\s+(\S+@\S+)\s+(\S+)\s+\((.+)\)\s*$/);
        if (login) logins.push({ role: login[1], email: login[2], password: login[3], name: login[4] });
      }
      if (output.includes("is listening on")) { clearTimeout(timer); ok(); }
    });
    child.once("exit", (code) => { clearTimeout(timer); fail(new Error(`the server exited (${code}):\n${output}`)); });
  });
  return {
    base: `http://127.0.0.1:${port}`,
    logins,
    login(role, index = 0) {
      const found = logins.filter((l) => l.role === role)[index];
      assert.ok(found, `the demo prints a ${role} login`);
      return found;
    },
    async stop() {
      child.removeAllListeners("exit");
      const exited = new Promise((ok) => child.once("exit", ok));
      child.kill("SIGTERM");
      await exited;
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function launchBrowser() {
  rmSync(artifacts, { recursive: true, force: true });
  mkdirSync(pages, { recursive: true });
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
}

/** A fresh browser context (its own cookies). `bypassCSP` lets axe-core be injected for the checks. */
export async function newPage(browser, { javaScript = true, width = 1024, height = 900, zoom = 1 } = {}) {
  // Zoom as a browser does it: the layout viewport shrinks by the factor, each CSS pixel grows by it.
  const context = await browser.newContext({
    javaScriptEnabled: javaScript, bypassCSP: true, viewport: { width: Math.round(width / zoom), height: Math.round(height / zoom) },
    deviceScaleFactor: zoom,
  });
  const page = await context.newPage();
  if (!javaScript) noScript.add(page);
  return page;
}

/** Pages whose context runs no JavaScript: axe-core checks a copy of what they show. */
const noScript = new WeakSet();

/** Whether the focused element shows a visible focus indicator (an outline of 2 px or more, or a ring). */
export function focusVisible(page) {
  return page.evaluate(() => {
    const style = getComputedStyle(document.activeElement);
    return (style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2) || style.boxShadow !== "none";
  });
}

/**
 * Presses Tab (or Shift+Tab, `back`) until the focused element matches `selector`, and checks that focus is
 * visible there; fails if Tab never reaches it (a keyboard trap or an unreachable control).
 */
export async function tabTo(page, selector, { back = false, max = 150 } = {}) {
  for (let presses = 0; presses < max; presses++) {
    await page.keyboard.press(back ? "Shift+Tab" : "Tab");
    if (await page.evaluate((s) => document.activeElement?.matches(s) ?? false, selector)) {
      assert.ok(await focusVisible(page), `focus is visible on ${selector} (${page.url()})`);
      return;
    }
  }
  assert.fail(`Tab never reached ${selector} on ${page.url()}`);
}

/** Whether the page lays out without sideways scrolling in its viewport. */
export function fitsWidth(page) {
  return page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1);
}

export async function signIn(page, server, who) {
  await page.goto(`${server.base}/login`);
  await page.fill("#email", who.email);
  await page.fill("#password", who.password);
  await page.click("main button[type=submit]");
  await page.waitForURL(/\/dashboard$/);
}

let step = 0;

/** Screenshots the page as a test artifact and fails on any WCAG 2.2 A/AA violation axe-core finds. */
export async function checkPage(page, name) {
  step += 1;
  const file = `${String(step).padStart(2, "0")}-${name}`;
  await page.screenshot({ path: join(artifacts, `${file}.png`), fullPage: true });
  writeFileSync(join(pages, `${file}.html`), await page.content());
  // axe needs JavaScript; a context with JavaScript off is checked through a second, enabled page.
  const target = await axeTarget(page);
  const script = await target.addScriptTag({ path: AXE });
  const results = await target.evaluate((tags) => window.axe.run(document, { runOnly: { type: "tag", values: tags } }), WCAG);
  await script.evaluate((element) => element.remove());
  if (target !== page) await target.context().close();
  const found = results.violations.map((v) =>
    `${v.id} (${v.impact}): ${v.help}\n` + v.nodes.slice(0, 5).map((n) => `    ${n.target.join(" ")}: ${n.failureSummary}`).join("\n"));
  assert.deepEqual(found, [], `${name} (${page.url()}) has accessibility violations:\n${found.join("\n")}`);
}

async function axeTarget(page) {
  if (!noScript.has(page)) return page;
  // The same document in a context that runs scripts, at the same origin so styles still load.
  const html = await page.content();
  const context = await page.context().browser().newContext({ bypassCSP: true, viewport: page.viewportSize() });
  const copy = await context.newPage();
  await copy.goto(new URL("/healthz", page.url()).href);
  await copy.setContent(html, { waitUntil: "load" });
  return copy;
}

/**
 * Runs the Nu HTML Checker (npm `vnu-jar`, on the machine's Java) over every page checked so far;
 * resolves with its error messages (none when every page is valid HTML).
 */
export function validateHtml() {
  const files = readdirSync(pages).filter((f) => f.endsWith(".html")).map((f) => join(pages, f));
  assert.ok(files.length > 0, "pages were checked");
  const run = spawnSync("java", ["-jar", require("vnu-jar"), "--errors-only", "--format", "text", ...files], { encoding: "utf8" });
  assert.ok(run.error === undefined, `java runs the Nu HTML Checker: ${run.error}`);
  return { files: files.length, errors: (run.stdout + run.stderr).trim(), status: run.status };
}
