// The page of `sundae serve` in a real browser (headless Chromium driven by playwright-core): it opens,
// generates (with a labelled model, its last label set random per image) and sees the images change over
// the steps, paints a mask on a generated image, inpaints,
// and saves screenshots. Usage: node browser-check.mjs URL OUT_DIR   (scripts/browser-check.sh runs it)
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.cwd(), "index.js"));
const { chromium } = require("playwright-core");
const [url, out] = process.argv.slice(2);
const fail = (message) => { console.error("browser check: " + message); process.exit(1); };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
page.on("pageerror", (e) => fail("page error: " + e.message));
await page.goto(url);
await page.waitForFunction(() => document.getElementById("model").textContent.length > 0);

// A model with label sets: the sets its sampling.toml draws start at "(random per image)", as `sundae
// sample` draws them; its last menu asks for a random value per image too.
const menus = await page.$$("#labels select");
const drawn = await page.evaluate(() => info.defaults.random_labels);
const menuValues = () => page.$$eval("#labels select", (all) => all.map((s) => [s.dataset.set, s.value]));
for (const [set, value] of await menuValues()) {
  if (drawn.includes(set) && value !== "(random)") fail(`menu ${set} starts at '${value}', not random`);
}
if (menus.length) await menus[menus.length - 1].selectOption("(random)");

// Generate: watch the first image change while the steps stream.
await page.fill("#count", "4");
await page.fill("#steps", "40");
await page.click("#go");
await page.waitForFunction(() => document.querySelector("#grid img")?.src.startsWith("data:"));
const first = await page.$eval("#grid img", (img) => img.src);
await page.waitForFunction((before) => document.querySelector("#grid img").src !== before, first);
const progress = await page.textContent("#progress");
if (!/step \d+ of 40/.test(progress)) fail("no step counter: " + progress);
await page.screenshot({ path: path.join(out, "serve-generating.png") });
await page.waitForFunction(() => document.getElementById("status").textContent.startsWith("done"), null, { timeout: 120000 });
const command = await page.textContent("#command");
if (!command.includes("sundae sample")) fail("no command line: " + command);
if (menus.length && !command.includes("--random-label")) fail("no --random-label in: " + command);
const downloads = await page.$$eval("#grid figcaption a", (links) => links.length);
if (downloads !== 4) fail("expected 4 PNG downloads, found " + downloads);

// Inpaint: pick the first generated image, paint its lower half, fill it in.
await page.click("#grid img");
await page.waitForFunction(() => !document.getElementById("inpaint-panel").classList.contains("hidden"));
for (const [set, value] of await menuValues()) {
  if (drawn.includes(set) && value !== "") fail(`menu ${set} is '${value}' for inpainting, not (any)`);
}
const box = await page.locator("#paint").boundingBox();
await page.mouse.move(box.x + 20, box.y + box.height * 0.75);
await page.mouse.down();
for (let x = 20; x <= box.width - 20; x += 10) await page.mouse.move(box.x + x, box.y + box.height * 0.75);
await page.mouse.up();
await page.fill("#count", "3");
await page.click("#go");
await page.waitForFunction(() => document.getElementById("status").textContent.startsWith("done"), null, { timeout: 120000 });
const inpaintCommand = await page.textContent("#command");
if (!inpaintCommand.includes("sundae inpaint")) fail("no inpaint command line: " + inpaintCommand);
for (const set of drawn) {
  if (inpaintCommand.includes("--random-label " + set)) fail("inpainting draws " + set + ": " + inpaintCommand);
}
await page.screenshot({ path: path.join(out, "serve-inpainted.png") });
await browser.close();
console.log("browser check: generate streamed and finished, inpaint finished; screenshots in " + out);
