// Without JavaScript the pages of part 2 read too, and the mapping editor still checks and
// previews a draft through its "Check and preview" button (a plain form post).
'use strict';

module.exports = {
  name: 'sources, mapping editor, plugins and directory read without JavaScript',
  async run(ctx) {
    const context = await ctx.browser.newContext({ javaScriptEnabled: false, viewport: { width: 1366, height: 768 } });
    const page = await context.newPage();
    await page.goto(`${ctx.base}/ui/login`);
    await page.getByLabel('API token').fill(ctx.tokens.operator);
    await Promise.all([page.waitForURL(/\/ui$/), page.getByRole('button', { name: 'Log in' }).click()]);
    for (const [urlPath, h1] of [
      ['/ui/sources', 'Sources'],
      ['/ui/sources/entra', 'Source entra'],
      ['/ui/sources/mapped/mapping', 'Mapping of mapped'],
      ['/ui/plugins', 'Plugins'],
      ['/ui/directory', 'Directory'],
    ]) {
      await page.goto(`${ctx.base}${urlPath}`);
      await page.getByRole('heading', { level: 1, name: h1 }).waitFor();
      ctx.check((await page.locator('main table, main p').count()) > 0, `${urlPath} shows nothing without JavaScript`);
    }
    await page.goto(`${ctx.base}/ui/sources/mapped/mapping`);
    await page.getByLabel(/^Mapping/).fill('{"user": {"username": "Left([username], )"}}');
    await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: 'Check and preview' }).click()]);
    ctx.check((await page.locator('#error-line').textContent()) === '1', 'the error is on line 1');
    ctx.check(!(await page.getByRole('button', { name: 'Save mapping' }).count()), 'an operator sees no Save');
    await context.close();
  },
};
