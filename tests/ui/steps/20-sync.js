// An operator starts a sync from the runs page and watches its progress (htmx polling the
// run's fragment) reach the end; then opens its per-object results and filters them.
'use strict';

module.exports = {
  name: 'start a sync, watch it to the end, filter its results',
  async run(ctx) {
    const page = await ctx.as('operator');
    await page.goto(`${ctx.base}/ui/runs`);
    await page.getByLabel('Mode').selectOption('full');
    await Promise.all([page.waitForURL(/\/ui\/runs\/\d+$/), page.getByRole('button', { name: 'Start sync' }).click()]);
    const runId = page.url().match(/\/ui\/runs\/(\d+)$/)[1];
    ctx.found.syncRun = runId;
    const state = page.locator('#run-state');
    const seen = new Set([await state.getAttribute('data-state')]);
    // The state is swapped in by htmx, without a reload, until the run ends.
    const until = Date.now() + 120000;
    let now = await state.getAttribute('data-state');
    while (now === 'running' && Date.now() < until) {
      await page.waitForTimeout(250);
      now = await state.getAttribute('data-state');
      seen.add(now);
      if (now === 'running' && (await page.locator('#progress progress, #progress strong').count()) > 0) seen.add('stage-shown');
    }
    ctx.check(now !== 'running', `run ${runId} still running after 2 minutes`);
    ctx.check(['held', 'succeeded', 'planned', 'partial'].includes(now), `run ${runId} ended ${now}`);
    ctx.check(page.url().endsWith(`/ui/runs/${runId}`), 'the page reloaded instead of updating');
    console.log(`     run ${runId}: states seen ${[...seen].join(', ')}`);
    ctx.found.syncState = now;
    await ctx.shot(page, 'run-progress-end');

    await page.goto(`${ctx.base}/ui/runs/${runId}`);
    await page.getByRole('heading', { name: 'Stages' }).waitFor();
    await page.getByRole('link', { name: 'Per-object results' }).click();
    await page.waitForURL(/\/results$/);
    const rows = page.locator('#results tbody tr');
    const total = await rows.count();
    ctx.check(total > 1, `run ${runId} has ${total} results`);
    await page.getByLabel('Operation').selectOption('deactivate-user');
    await Promise.all([page.waitForURL(/kind=deactivate-user/), page.getByRole('button', { name: 'Filter' }).click()]);
    const kinds = await page.locator('#results tbody tr td:nth-child(2)').allTextContents();
    ctx.check(kinds.length > 0 && kinds.length < total, `filtered to ${kinds.length} of ${total}`);
    ctx.check(kinds.every((k) => k.trim() === 'deactivate-user'), `filter let through ${kinds}`);
    // Search by a subject.
    const subject = (await page.locator('#results tbody tr td:nth-child(3)').first().textContent()).trim();
    await page.getByLabel('Operation').selectOption('');
    await page.getByLabel('Search subject, reason or message').fill(subject);
    await Promise.all([page.waitForURL(/q=/), page.getByRole('button', { name: 'Filter' }).click()]);
    const subjects = await page.locator('#results tbody tr td:nth-child(3)').allTextContents();
    ctx.check(subjects.length >= 1 && subjects.every((s) => s.includes(subject)), `search for ${subject}: ${subjects}`);
    // The export links answer with the rows.
    const csv = await page.request.get(`${ctx.base}/ui/runs/${runId}/results.csv`);
    ctx.check(csv.ok() && (await csv.text()).split('\n').length > total, 'CSV export');
    ctx.visit('runs', '/ui/runs', 'operator');
    ctx.visit('run', `/ui/runs/${runId}`, 'operator');
    ctx.visit('results', `/ui/runs/${runId}/results`, 'operator');
    await page.context().close();
  },
};
