// Roster's admin pages end to end in Debian's chromium (playwright-core), then axe-core and a
// screenshot on every page a step visited. Started by host/roster/tests/service/ui_browser.rs,
// which serves Roster with the simulators and passes, in the environment:
//   ROSTER_UI_URL        the server (http://127.0.0.1:PORT)
//   ROSTER_UI_ADMIN, ROSTER_UI_OPERATOR, ROSTER_UI_VIEWER   an API token per role
//   ROSTER_UI_SHOTS      where screenshots go (target/ui-screenshots)
//   ROSTER_UI_MARKUP     the display name with markup an IdP sent
//   CHROMIUM_PATH        the browser (default /usr/bin/chromium)
// Each file of steps/ (in name order) exports { name, run(ctx) }; a step that throws fails the
// run, the others still run. Add a page's checks as a new file there (see steps/README.md).
'use strict';

const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set; ui_browser.rs sets it`);
  return v;
};

const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'];
const VIEWPORT = { width: 1366, height: 768 }; // a laptop screen

async function main() {
  const ctx = {
    base: env('ROSTER_UI_URL'),
    tokens: { admin: env('ROSTER_UI_ADMIN'), operator: env('ROSTER_UI_OPERATOR'), viewer: env('ROSTER_UI_VIEWER') },
    shots: env('ROSTER_UI_SHOTS'),
    markup: env('ROSTER_UI_MARKUP'),
    // Pages for the axe pass and screenshots: name -> { path, role } (role null: logged out).
    pages: new Map(),
    // What steps hand on to later steps (run ids, plan ids, ...).
    found: {},
    failures: [],
  };
  fs.mkdirSync(path.join(ctx.shots, 'screen'), { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox'], // root in containers; Playwright adds it anyway unless chromiumSandbox
  });
  ctx.browser = browser;

  // A page in a fresh context (the real CSP applies), with every CSP violation, uncaught error
  // and alert recorded as a failure; confirm() dialogs are accepted.
  ctx.newPage = async (label) => {
    const context = await browser.newContext({ viewport: VIEWPORT });
    const page = await context.newPage();
    page.on('console', (m) => {
      const t = m.text();
      if (/Content.Security.Policy|Refused to (execute|apply|load)/i.test(t)) ctx.fail(`${label}: CSP violation: ${t}`);
    });
    page.on('pageerror', (e) => ctx.fail(`${label}: script error: ${e.message}`));
    page.on('dialog', async (d) => {
      if (d.type() === 'confirm') return d.accept();
      ctx.fail(`${label}: unexpected ${d.type()} dialog "${d.message()}" (markup executed?)`);
      return d.dismiss();
    });
    return page;
  };
  // Logs `page` in through the form, as a person does.
  ctx.login = async (page, role) => {
    await page.goto(`${ctx.base}/ui`);
    await page.getByLabel('API token').fill(ctx.tokens[role]);
    await Promise.all([page.waitForURL(/\/ui$/), page.getByRole('button', { name: 'Log in' }).click()]);
  };
  ctx.as = async (role) => {
    const page = await ctx.newPage(role);
    await ctx.login(page, role);
    return page;
  };
  ctx.visit = (name, urlPath, role = 'admin') => ctx.pages.set(name, { path: urlPath, role });
  // The whole page, and what a 1366x768 laptop shows of it first (screen/, for the README).
  ctx.shot = async (page, name) => {
    await page.screenshot({ path: path.join(ctx.shots, `${name}.png`), fullPage: true });
    await page.screenshot({ path: path.join(ctx.shots, 'screen', `${name}.png`) });
  };
  ctx.check = (ok, message) => {
    if (!ok) throw new Error(message);
  };
  ctx.fail = (message) => {
    console.log(`FAIL ${message}`);
    ctx.failures.push(message);
  };

  const dir = path.join(__dirname, 'steps');
  const steps = fs.readdirSync(dir).filter((f) => f.endsWith('.js')).sort();
  for (const file of steps) {
    const step = require(path.join(dir, file));
    const started = Date.now();
    try {
      await step.run(ctx);
      console.log(`ok   ${file}: ${step.name} (${Date.now() - started} ms)`);
    } catch (e) {
      ctx.fail(`${file}: ${step.name}: ${e.stack || e}`);
    }
  }

  // axe on every page a step visited, in a context that bypasses the CSP only so that axe's
  // script can be injected; then a screenshot of each.
  const axeSource = fs.readFileSync(require.resolve('axe-core'), 'utf8');
  const contexts = {};
  for (const [name, { path: urlPath, role }] of ctx.pages) {
    const key = role || 'anonymous';
    if (!contexts[key]) {
      const c = await browser.newContext({ bypassCSP: true, viewport: VIEWPORT });
      const p = await c.newPage();
      if (role) await ctx.login(p, role);
      contexts[key] = p;
    }
    const page = contexts[key];
    try {
      const resp = await page.goto(`${ctx.base}${urlPath}`);
      ctx.check(resp && resp.ok(), `${name}: GET ${urlPath} answered ${resp && resp.status()}`);
      await page.waitForLoadState('load');
      await page.addScriptTag({ content: axeSource });
      const { violations } = await page.evaluate((tags) => window.axe.run(document, { runOnly: tags }), AXE_TAGS);
      for (const v of violations) {
        const line = `${name} ${urlPath}: axe ${v.impact} ${v.id} (${v.nodes.length} node(s)): ${v.help}`;
        if (v.impact === 'serious' || v.impact === 'critical') ctx.fail(line);
        else console.log(`note ${line}`);
      }
      await ctx.shot(page, name);
      console.log(`ok   axe: ${name} ${urlPath}`);
    } catch (e) {
      ctx.fail(`axe: ${name}: ${e.stack || e}`);
    }
  }
  await browser.close();
  if (ctx.failures.length) {
    console.log(`${ctx.failures.length} failure(s):\n${ctx.failures.join('\n')}`);
    process.exitCode = 1;
  } else {
    console.log(`all steps passed; ${ctx.pages.size} pages checked with axe; screenshots in ${ctx.shots}`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
