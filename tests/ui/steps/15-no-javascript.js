// Without JavaScript every page still reads and the login form still works (htmx and app.js
// only enhance).
'use strict';

module.exports = {
  name: 'pages read without JavaScript',
  async run(ctx) {
    const context = await ctx.browser.newContext({ javaScriptEnabled: false, viewport: { width: 1366, height: 768 } });
    const page = await context.newPage();
    await page.goto(`${ctx.base}/ui/login`);
    await page.getByLabel('API token').fill(ctx.tokens.viewer);
    await Promise.all([page.waitForURL(/\/ui$/), page.getByRole('button', { name: 'Log in' }).click()]);
    for (const [urlPath, h1] of [['/ui', 'Dashboard'], ['/ui/runs', 'Runs'], ['/ui/audit', 'Audit log']]) {
      await page.goto(`${ctx.base}${urlPath}`);
      await page.getByRole('heading', { level: 1, name: h1 }).waitFor();
      ctx.check((await page.locator('main table, main p').count()) > 0, `${urlPath} shows nothing without JavaScript`);
    }
    // Times are dates even before app.js turns them into local time.
    const times = await page.locator('time[datetime]').allTextContents();
    ctx.check(times.length > 0 && times.every((t) => /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$/.test(t.trim())), `times: ${times.slice(0, 3)}`);
    await context.close();
  },
};
