// Logging in: the pages send a stranger to the login form, a wrong token is refused there, a
// right one lands on the dashboard with the live parts in place.
'use strict';

module.exports = {
  name: 'log in with an API token',
  async run(ctx) {
    const page = await ctx.newPage('login');
    await page.goto(`${ctx.base}/ui/runs`);
    ctx.check(/\/ui\/login\?next=/.test(page.url()), `not sent to the login form: ${page.url()}`);
    await page.getByLabel('API token').fill('roster_not-a-token');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByText('unknown or revoked').waitFor();
    await page.getByLabel('API token').fill(ctx.tokens.operator);
    await Promise.all([page.waitForURL(/\/ui\/runs$/), page.getByRole('button', { name: 'Log in' }).click()]);
    await page.goto(`${ctx.base}/ui`);
    await page.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
    ctx.check(await page.getByRole('main').count() === 1, 'the dashboard has one main landmark');
    ctx.check(await page.locator('#in-progress[role="status"]').count() === 1, 'no live region for runs in progress');
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === '__Host-roster_session');
    ctx.check(session && session.httpOnly && session.secure && session.sameSite === 'Strict', `session cookie: ${JSON.stringify(session)}`);
    ctx.visit('login', '/ui/login', null);
    ctx.visit('dashboard', '/ui', 'operator');
    await page.context().close();
  },
};
