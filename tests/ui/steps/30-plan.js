// The sync above was held by the guard (a mass deprovisioning). An administrator reviews the
// plan (a diff per user and per group with reasons, the seats, why it was held), sees the
// IdP's display name with markup as text, and approves it by its hash.
'use strict';

module.exports = {
  name: 'review and approve a held plan; markup from the IdP is text',
  async run(ctx) {
    ctx.check(ctx.found.syncState === 'held', `the sync was ${ctx.found.syncState}, not held`);
    const page = await ctx.as('admin');
    await page.goto(`${ctx.base}/ui/runs/${ctx.found.syncRun}`);
    await Promise.all([page.waitForURL(/\/ui\/plans\//), page.getByRole('link', { name: 'Review the plan' }).click()]);
    const planPath = new URL(page.url()).pathname;
    await page.getByRole('heading', { name: 'Why it was held' }).waitFor();
    const users = await page.locator('#plan-users').textContent();
    ctx.check(/deprovisioned/.test(users), 'no deprovisioning in the diff');
    ctx.check(users.includes(ctx.markup), 'the display name with markup is not shown as text');
    ctx.check((await page.locator('script:not([src])').count()) === 0, 'an inline script is on the page');
    ctx.check(await page.getByRole('table', { name: /Licence arithmetic/ }).count() === 1, 'no seat arithmetic');
    await ctx.shot(page, 'plan-review');
    await Promise.all([
      page.waitForURL(/\/ui\/runs\/\d+$/),
      page.getByRole('button', { name: 'Approve and apply' }).click(),
    ]);
    const state = await page.locator('#run-state').getAttribute('data-state');
    ctx.check(state === 'succeeded', `the approved plan's run ended ${state}`);
    ctx.found.appliedRun = page.url().match(/(\d+)$/)[1];
    ctx.visit('plan', planPath, 'admin');
    ctx.found.planPath = planPath;
    await page.context().close();
  },
};
