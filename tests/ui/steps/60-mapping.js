// The mapping editor: type a mapping with a syntax error and see it at its line and column,
// fix it and see the preview change (pasted sample records: the source `mapped` is disabled,
// so it has no mirror), then save; the stored mapping is the fixed one.
'use strict';

const SAMPLE = JSON.stringify({
  users: [{ id: 's1', username: 'sam', attributes: { userPrincipalName: 'Sam.Sample@example.com' } }],
  groups: [{ id: 'g1', name: 'Developers' }],
  memberships: [{ group: 'g1', member: 's1' }],
});

const mapping = (expr) => `{\n  "user": {\n    "username": ${JSON.stringify(expr)}\n  }\n}`;

module.exports = {
  name: 'edit a mapping: a syntax error at its position, fixed, the preview changes, saved',
  async run(ctx) {
    const page = await ctx.as('admin');
    await page.goto(`${ctx.base}/ui/sources`);
    await Promise.all([page.waitForURL(/\/ui\/sources\/mapped$/), page.getByRole('link', { name: 'mapped' }).click()]);
    await Promise.all([page.waitForURL(/\/mapping/), page.getByRole('link', { name: /mapping/ }).first().click()]);
    const editor = page.getByLabel(/^Mapping/);
    const status = page.locator('#mapping-status');

    // Sample records: the preview runs over them.
    await page.getByLabel(/^Sample records/).fill(SAMPLE);
    await page.waitForFunction(() => /sample records/.test(document.querySelector('#mapping-status')?.textContent || ''));
    ctx.check((await page.locator('#preview-users').textContent()).includes('sam.sample'), 'the stored mapping previews sam.sample');

    // Typed with an error: where it is, as the person types (no button pressed).
    await editor.fill(mapping('Append(StripDomain([userPrincipalName]), '));
    await page.locator('#error-line').waitFor();
    const line = await page.locator('#error-line').textContent();
    const column = Number(await page.locator('#error-column').textContent());
    ctx.check(line === '3', `the error is on line 3 of the mapping, not ${line}`);
    ctx.check(column > 17, `the error's column (${column}) is inside the username's expression`);
    ctx.check(/user\.username/.test(await status.textContent()), 'the error names the field');
    // The editor keeps focus while the live part changes; "Go to" puts the caret at the error.
    ctx.check(await editor.evaluate((el) => el === document.activeElement), 'the textarea kept focus');
    await page.getByRole('button', { name: /^Go to line 3/ }).click();
    const caret = await editor.evaluate((el) => el.selectionStart);
    const want = await editor.evaluate((el, col) => el.value.split('\n').slice(0, 2).join('\n').length + 1 + col - 1, column);
    ctx.check(caret === want, `the caret went to ${caret}, not ${want}`);
    await ctx.shot(page, 'mapping-error');

    // Fixed: the preview changes.
    await editor.fill(mapping('Append(ToLower(StripDomain([userPrincipalName])), ".dev")'));
    await page.waitForFunction(() => (document.querySelector('#preview-users')?.textContent || '').includes('sam.sample.dev'));
    ctx.check((await page.locator('#error-line').count()) === 0, 'the error is gone');
    ctx.check(/mapped username/.test(await page.locator('#preview-users').textContent()), 'the step says which rule decided');
    await ctx.shot(page, 'mapping-preview');

    // Saved: the page says so, and the stored mapping is the one typed.
    await Promise.all([page.waitForURL(/saved=1/), page.getByRole('button', { name: 'Save mapping' }).click()]);
    ctx.check((await page.locator('#saved').count()) === 1, 'the page says the mapping was saved');
    ctx.check((await editor.inputValue()).includes('.dev'), 'the editor shows the saved mapping');
    const stored = await page.evaluate(async (token) => {
      const r = await fetch('/api/v1/sources/mapped', { headers: { authorization: `Bearer ${token}` } });
      return r.json();
    }, ctx.tokens.viewer);
    const expr = stored.config.transforms[0].settings.user.username;
    ctx.check(expr.includes('.dev'), `stored: ${expr}`);
    ctx.visit('mapping-editor', '/ui/sources/mapped/mapping', 'admin');
    ctx.visit('source', '/ui/sources/mapped', 'admin');
    ctx.visit('sources', '/ui/sources', 'admin');
    await page.context().close();
  },
};
