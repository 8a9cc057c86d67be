// The ops console in a real browser (Debian's Chromium, driven by playwright-core):
// signs in, walks every page and keeps a screenshot of each, retries a dead job and
// watches it succeed; then does the same with JavaScript off, where everything but the
// auto-refresh must still work. Run by the binary's test `the_console_in_a_browser`
// (bin/keel/tests/http/console.rs), which starts Keel and seeds the dead jobs:
//
//   OPS_BASE=http://127.0.0.1:PORT OPS_TOKEN=... OPS_DEAD_JOBS=id1,id2 OPS_SHOTS=dir node console.mjs
//
// Prints one JSON line with the screenshots' paths; exits non-zero on the first failure.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const base = process.env.OPS_BASE;
const token = process.env.OPS_TOKEN;
const [deadWithScript, deadWithout] = (process.env.OPS_DEAD_JOBS || "").split(",");
const shots = process.env.OPS_SHOTS;
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
if (!base || !token || !deadWithScript || !deadWithout || !shots) {
  throw new Error("OPS_BASE, OPS_TOKEN, OPS_DEAD_JOBS (two ids) and OPS_SHOTS are required");
}
mkdirSync(shots, { recursive: true });
const taken = [];

function check(condition, what) {
  if (!condition) throw new Error(`check failed: ${what}`);
}

async function shot(page, name) {
  const path = join(shots, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  taken.push(path);
}

async function signIn(page) {
  await page.goto(`${base}/ops`);
  check(page.url().endsWith("/ops/login"), `the console sends a stranger to sign in (at ${page.url()})`);
  await page.fill("#token", "not-the-admin-token");
  await page.click("button[type=submit]");
  check((await page.textContent("[role=alert]")).includes("not the admin token"), "a wrong token is refused");
  await page.fill("#token", token);
  await page.click("button[type=submit]");
  await page.waitForURL(`${base}/ops`);
  check((await page.textContent("h1")) === "Overview", "signed in, the overview shows");
}

/// Retries the dead job `id` from the jobs page and waits until its page says succeeded.
async function retry(page, id) {
  await page.goto(`${base}/ops/jobs`);
  const row = page.locator("tr.dead-job", { has: page.locator(`a[href="/ops/jobs/${id}"]`) });
  check((await row.count()) === 1, `dead job ${id} is listed`);
  await row.getByRole("button", { name: "Retry" }).click();
  await page.waitForURL(/done=retried/);
  check((await page.textContent(".notice")).includes("Retried 1 dead job"), "the retry is confirmed");
  for (let i = 0; i < 100; i++) {
    await page.goto(`${base}/ops/jobs/${id}`);
    if ((await page.textContent(".state-succeeded").catch(() => null)) === "succeeded") return;
    await page.waitForTimeout(200);
  }
  throw new Error(`job ${id} did not succeed after its retry`);
}

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  // With JavaScript: every page, the dead job retried, the auto-refresh running.
  const scripted = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await scripted.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  // Script errors, and anything the page's CSP refused; a refused sign-in's 401 is
  // logged as a failed load and is expected.
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) errors.push(m.text());
  });
  await page.goto(`${base}/ops/login`);
  await shot(page, "login");
  await signIn(page);
  check((await page.textContent("#refresh-status")).includes("Refreshing every"), "the overview refreshes itself");
  check(await page.locator(".card svg.spark").count() >= 8, "every overview card has a sparkline");
  check((await page.textContent(".replicas")).includes("Aggregated over 2 processes"), "the numbers are both processes'");
  // Let one refresh happen: the page must survive it.
  await page.waitForTimeout(2500);
  check((await page.textContent("h1")) === "Overview", "the overview after a refresh");
  await shot(page, "overview");
  for (const [path, title, name] of [
    ["/ops/endpoints", "Endpoints", "endpoints"],
    ["/ops/third-parties", "Third parties", "third-parties"],
    ["/ops/database", "Database", "database"],
  ]) {
    await page.goto(`${base}${path}`);
    check((await page.textContent("h1")) === title, `${title} shows`);
    await shot(page, name);
  }
  await page.goto(`${base}/ops/endpoints?sort=rate`);
  check((await page.locator("tbody tr").count()) >= 2, "the endpoints table lists the routes called");
  await page.goto(`${base}/ops/jobs`);
  await shot(page, "jobs");
  await page.goto(`${base}/ops/jobs/${deadWithScript}`);
  check((await page.textContent(".state-dead")) === "dead", "the job's page says dead");
  check((await page.textContent("pre:not(.error-text)")).includes("[redacted]"), "secrets in the payload are redacted");
  await shot(page, "job-dead");
  await retry(page, deadWithScript);
  await shot(page, "job-succeeded");
  await page.goto(`${base}/ops/audit`);
  await shot(page, "audit");
  check(errors.length === 0, `no script errors: ${errors.join("; ")}`);
  await scripted.close();

  // Without JavaScript: sign in, retry, pause and resume — forms and links alone.
  const plain = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 1280, height: 900 } });
  const noscript = await plain.newPage();
  await signIn(noscript);
  await retry(noscript, deadWithout);
  await noscript.goto(`${base}/ops/jobs`);
  const kind = noscript.locator("tr", { has: noscript.locator("code", { hasText: "notifications.send_email" }) });
  await kind.getByRole("button", { name: "Pause" }).click();
  check((await noscript.textContent(".notice")).includes("Paused notifications.send_email"), "a kind is paused");
  check((await noscript.locator("tr.paused").count()) === 1, "the paused kind is marked");
  await shot(noscript, "jobs-paused-no-script");
  await noscript.getByRole("button", { name: "Resume" }).click();
  check((await noscript.textContent(".notice")).includes("Resumed notifications.send_email"), "and resumed");
  await noscript.click("text=Sign out");
  await noscript.waitForURL(`${base}/ops/login`);
  await noscript.goto(`${base}/ops/jobs`);
  check(noscript.url().endsWith("/ops/login"), "signed out, the console is closed again");
  await plain.close();
} finally {
  await browser.close();
}
console.log(JSON.stringify({ screenshots: taken }));
