// Plugins: upload a component (refused when broken, nothing replaced; loaded and listed when
// sound); the directory's "why"; every page of part 2 goes to the axe pass.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');

module.exports = {
  name: 'upload a plugin (a broken one refused), the directory explains a membership',
  async run(ctx) {
    const page = await ctx.as('admin');
    await page.goto(`${ctx.base}/ui/plugins`);
    const file = page.getByLabel(/^Component/);
    const out = page.locator('#upload-outcome');

    const broken = path.join(os.tmpdir(), `broken-${process.pid}.wasm`);
    fs.writeFileSync(broken, Buffer.from('\0asm but not a component'));
    await file.setInputFiles(broken);
    await page.getByLabel(/^Save as/).fill('mapping.wasm');
    await page.getByRole('button', { name: 'Upload and load' }).click();
    await out.waitFor();
    ctx.check(/refused, and nothing was replaced/.test(await out.textContent()), `broken upload: ${await out.textContent()}`);
    await ctx.shot(page, 'plugins-refused');
    fs.unlinkSync(broken);

    const component = process.env.ROSTER_UI_COMPONENT;
    ctx.check(component && fs.existsSync(component), 'ROSTER_UI_COMPONENT names a component (ui_browser.rs sets it)');
    await page.getByLabel(/^Save as/).fill('');
    await file.setInputFiles(component);
    await page.getByRole('button', { name: 'Upload and load' }).click();
    await page.waitForFunction(() => /loaded: plugin/.test(document.querySelector('#upload-outcome')?.textContent || ''));
    await page.waitForLoadState('load');
    await page.waitForFunction(() => (document.querySelector('#plugins')?.textContent || '').includes('normalize.wasm'));

    // Directory: the merged people, and why someone is in a group.
    await page.goto(`${ctx.base}/ui/directory`);
    const firstUser = (await page.locator('#people tbody tr td').first().textContent()).trim();
    const firstGroup = (await page.locator('#groups tbody tr td').first().textContent()).trim();
    await page.getByLabel('User', { exact: true }).fill(firstUser);
    await page.getByLabel('Group', { exact: true }).fill(firstGroup);
    await Promise.all([page.waitForURL(/user=/), page.getByRole('button', { name: 'Explain' }).click()]);
    const why = await page.locator('#why').textContent();
    ctx.check(why.includes(firstUser), `why names ${firstUser}: ${why}`);
    ctx.visit('plugins', '/ui/plugins', 'admin');
    ctx.visit('directory', `/ui/directory?user=${encodeURIComponent(firstUser)}&group=${encodeURIComponent(firstGroup)}`, 'admin');
    ctx.visit('source-as-viewer', '/ui/sources/entra', 'viewer');
    await page.context().close();
  },
};
