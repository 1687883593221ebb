// A viewer sees no control that changes anything, and the server refuses a forged change
// anyway: with the session's own CSRF token (role) and without it (CSRF).
'use strict';

module.exports = {
  name: 'the viewer sees no controls and a forged POST is refused',
  async run(ctx) {
    const page = await ctx.as('viewer');
    await page.goto(`${ctx.base}/ui/runs`);
    ctx.check((await page.getByRole('button', { name: 'Start sync' }).count()) === 0, 'a viewer sees Start sync');
    await page.goto(`${ctx.base}${ctx.found.planPath || '/ui'}`);
    ctx.check((await page.getByRole('button', { name: /Approve|Reject/ }).count()) === 0, 'a viewer sees Approve/Reject');
    ctx.check((await page.getByRole('link', { name: 'Tokens' }).count()) === 0, 'a viewer sees Tokens');
    const forged = await page.evaluate(async () => {
      const headers = JSON.parse(document.body.getAttribute('hx-headers'));
      const post = (extra) => fetch('/ui/runs', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...extra },
        body: 'mode=full',
        redirect: 'manual',
      }).then((r) => r.status);
      return { withToken: await post(headers), without: await post({}) };
    });
    ctx.check(forged.withToken === 403, `a viewer's POST with the CSRF token answered ${forged.withToken}`);
    ctx.check(forged.without === 403, `a POST without the CSRF token answered ${forged.without}`);
    ctx.visit('runs-as-viewer', '/ui/runs', 'viewer');
    await page.context().close();
  },
};
