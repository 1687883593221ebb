// An administrator creates a token (shown once) and revokes it; both are in the audit log.
'use strict';

module.exports = {
  name: 'create and revoke an API token; the audit log shows it',
  async run(ctx) {
    const page = await ctx.as('admin');
    await page.goto(`${ctx.base}/ui/tokens`);
    await page.getByLabel('Name (who or what it is for)').fill('ci-bot');
    await page.getByLabel('Role').selectOption('viewer');
    await page.getByRole('button', { name: 'Create token' }).click();
    const token = (await page.locator('#new-token').textContent()).trim();
    ctx.check(/^roster_[0-9a-f]{40}$/.test(token), `the new token: ${token}`);
    await page.goto(`${ctx.base}/ui/tokens`);
    ctx.check(!(await page.content()).includes(token), 'the token is shown again');
    await page.getByRole('button', { name: /Revoke token \d+ \(ci-bot\)/ }).click();
    await page.waitForURL(/\/ui\/tokens$/);
    await page.goto(`${ctx.base}/ui/audit`);
    const audit = await page.locator('main table').textContent();
    for (const action of ['token.create', 'token.revoke', 'plan.approve', 'run.start', 'ui.login']) {
      ctx.check(audit.includes(action), `${action} not in the audit log`);
    }
    ctx.visit('tokens', '/ui/tokens', 'admin');
    ctx.visit('audit', '/ui/audit', 'admin');
    ctx.visit('dashboard-after', '/ui', 'admin');
    await page.context().close();
  },
};
