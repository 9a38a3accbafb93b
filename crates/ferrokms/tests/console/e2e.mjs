// Drives the ferrokms web console in Debian's chromium (headless, never a downloaded browser):
// sign-in (a wrong secret refused), create keys, filter them, disable/enable, schedule and
// cancel deletion, edit a policy (invalid ones refused with the reason shown, a valid one saved
// after its diff), schedule a deletion, find those actions in the audit view, verify the chain,
// list principals, draw the dashboard, sign out. Each page is screenshotted to $SCREENSHOTS and
// checked with axe-core. Run by crates/ferrokms/tests/console.rs, which starts the server.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

// axe-core checks each page for accessibility problems (labels, contrast, names, structure).
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

const { CONSOLE_URL, ACCESS_KEY_ID, SECRET_ACCESS_KEY, LISTER_ACCESS_KEY_ID, LISTER_SECRET_ACCESS_KEY, SCREENSHOTS, FAILURE_SCREENSHOT, CHROMIUM } = process.env;
const step = (name) => console.log(`step: ${name}`);

const browser = await chromium.launch({ executablePath: CHROMIUM || '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
const context = await browser.newContext({ viewport: { width: 1366, height: 768 } });
const page = await context.newPage();
page.setDefaultTimeout(10000);
const problems = [];
page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
// Refused calls (4xx answers the test provokes) are logged by the browser as failed loads.
page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(`console error: ${m.text()}`); });
const accessibility = [];
async function shot(name) {
  await page.evaluate(() => { document.getElementById('status').textContent = ''; });
  await page.screenshot({ path: `${SCREENSHOTS}/${name}.png`, fullPage: false });
  // Evaluated through the DevTools protocol, which the page's Content-Security-Policy does not govern.
  if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) await page.evaluate(`${axeSource}\n;0`);
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ['violations'] });
    return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join('; ')}`);
  });
  for (const v of violations) accessibility.push(`${name}: ${v}`);
}

try {
  step('sign-in page');
  await page.goto(CONSOLE_URL);
  await page.getByLabel('Access key ID').waitFor();
  if (await page.getByRole('button', { name: 'Sign out' }).isVisible()) throw new Error('Sign out shown before sign-in');
  if (await page.getByRole('navigation').isVisible()) throw new Error('navigation shown before sign-in');
  await shot('sign-in');

  step('a wrong secret is refused');
  await page.getByLabel('Access key ID').fill(ACCESS_KEY_ID);
  await page.getByLabel('Secret access key').fill('not-the-secret');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#sign-in-error', { hasText: 'not valid' }).waitFor();

  step('sign in');
  await page.getByLabel('Secret access key').fill(SECRET_ACCESS_KEY);
  // Keyboard only: Enter submits the form.
  await page.getByLabel('Secret access key').press('Enter');
  await page.getByRole('heading', { name: 'Keys' }).waitFor();

  step('create a key');
  await page.getByText('Create a key').click();
  const create = page.getByRole('form', { name: 'Create a key' });
  await create.getByLabel('Description').fill('made in the console');
  await create.getByLabel('Alias').fill('console-e2e');
  await create.getByLabel('Tag').fill('team=payments');
  await create.getByRole('button', { name: 'Create key' }).click();
  const created = await create.locator('p.success').textContent({ timeout: 15000 });
  const keyId = /Created key ([0-9a-f-]{36})/.exec(created)[1];
  step('create a signing key of another spec');
  await create.getByLabel('Key spec').selectOption('ECC_NIST_P256');
  await create.getByLabel('Key usage').selectOption('SIGN_VERIFY');
  await create.getByLabel('Description').fill('an ECC signing key');
  await create.getByRole('button', { name: 'Create key' }).click();
  await create.locator('p.success', { hasNotText: keyId }).waitFor({ timeout: 15000 });
  await page.getByRole('link', { name: keyId }).waitFor();
  await page.locator('tr', { hasText: 'ECC_NIST_P256' }).first().waitFor();
  await shot('keys');

  step('keyboard: Tab reaches the filters, with a visible focus ring');
  await page.getByRole('heading', { name: 'Keys' }).focus();
  let reached = null;
  for (let i = 0; i < 40 && !reached; i += 1) {
    await page.keyboard.press('Tab');
    reached = await page.evaluate(() => {
      const a = document.activeElement;
      if (!a || a.textContent !== 'Apply filters') return null;
      const style = getComputedStyle(a);
      return { outline: style.outlineStyle, width: parseFloat(style.outlineWidth) };
    });
  }
  if (!reached || reached.outline === 'none' || reached.width < 2) throw new Error(`no visible keyboard focus: ${JSON.stringify(reached)}`);

  step('filter keys by spec');
  await page.getByRole('form', { name: 'Filter keys' }).getByLabel('Key spec').selectOption('ECC_NIST_P256');
  await page.getByRole('button', { name: 'Apply filters' }).click();
  await page.getByRole('link', { name: keyId }).waitFor({ state: 'detached' });
  await page.getByRole('form', { name: 'Filter keys' }).getByLabel('Key spec').selectOption('');
  step('filter keys by tag');
  await page.getByRole('form', { name: 'Filter keys' }).getByLabel('Tag').fill('team=payments');
  await page.getByRole('button', { name: 'Apply filters' }).click();
  await page.getByRole('link', { name: keyId }).waitFor();
  await page.locator('tr', { hasText: 'ECC_NIST_P256' }).waitFor({ state: 'detached' });
  await page.getByRole('form', { name: 'Filter keys' }).getByLabel('Tag').fill('');
  await page.getByRole('button', { name: 'Apply filters' }).click();

  step('disable, enable, schedule and cancel deletion from the list');
  const ecc = () => page.locator('tbody tr', { hasText: 'ECC_NIST_P256' });
  await ecc().getByRole('button', { name: 'Disable' }).click();
  await ecc().getByRole('button', { name: 'Enable' }).click();
  await ecc().getByRole('button', { name: 'Disable' }).waitFor();
  await ecc().getByRole('button', { name: 'Schedule deletion' }).click();
  await ecc().getByLabel('Waiting period (days, 7–30)').fill('10');
  await ecc().getByRole('button', { name: 'Confirm deletion' }).click();
  await ecc().getByText('PendingDeletion').waitFor();
  await ecc().getByRole('button', { name: 'Cancel deletion' }).click();
  await ecc().getByText('Disabled', { exact: true }).waitFor();

  step('key detail');
  await page.getByRole('link', { name: keyId }).click();
  await page.getByRole('heading', { name: `Key ${keyId}` }).waitFor();
  const editor = page.getByLabel('Key policy (JSON)');
  await editor.waitFor();
  await page.getByText('alias/console-e2e').waitFor();
  await page.getByRole('cell', { name: 'payments', exact: true }).waitFor();
  const original = await editor.inputValue();
  await shot('key');

  step('invalid JSON is refused before saving');
  await editor.fill('{ "Version": "2012-10-17", ');
  await page.getByRole('button', { name: 'Review changes' }).click();
  await page.locator('#policy-message', { hasText: 'Invalid JSON' }).waitFor();
  if (await page.getByRole('button', { name: 'Save policy' }).isEnabled()) throw new Error('Save enabled for invalid JSON');

  step('a malformed policy is reported by the server before saving, and refused');
  const malformed = JSON.parse(original);
  malformed.Statement = [{ Effect: 'Perhaps', Principal: { AWS: '*' }, Action: 'kms:*', Resource: '*' }];
  await editor.fill(JSON.stringify(malformed));
  await page.getByRole('button', { name: 'Review changes' }).click();
  await page.locator('#policy-message .error', { hasText: 'PutKeyPolicy would refuse this policy. MalformedPolicyDocumentException' }).waitFor();
  await page.getByRole('button', { name: 'Save policy' }).click();
  await page.locator('#policy-message', { hasText: 'Not saved. MalformedPolicyDocumentException' }).waitFor();

  step('a policy that would lock the caller out is warned about, and refused');
  const lockout = JSON.parse(original);
  lockout.Statement = [{ Sid: 'OnlyDescribe', Effect: 'Allow', Principal: { AWS: '*' }, Action: 'kms:DescribeKey', Resource: '*' }];
  await editor.fill(JSON.stringify(lockout));
  await page.getByRole('button', { name: 'Review changes' }).click();
  await page.locator('#policy-message .warning', { hasText: 'Lockout warning' }).waitFor();
  await page.getByRole('button', { name: 'Save policy' }).click();
  await page.locator('#policy-message .warning', { hasText: 'lockout safety check' }).waitFor();

  step('a valid policy is saved after its diff is shown');
  const edited = JSON.parse(original);
  edited.Statement.push({ Sid: 'ConsoleE2E', Effect: 'Allow', Principal: { AWS: '*' }, Action: 'kms:DescribeKey', Resource: '*',
    Condition: { StringEquals: { 'kms:CallerAccount': '000000000000' } } });
  await editor.fill(JSON.stringify(edited, null, 2));
  await page.getByRole('button', { name: 'Review changes' }).click();
  await page.locator('#policy-diff .add', { hasText: 'ConsoleE2E' }).waitFor();
  await page.locator('#policy-message', { hasText: "The server's checks pass" }).waitFor();
  await page.locator('#policy-diff .add', { hasText: 'ConsoleE2E' }).scrollIntoViewIfNeeded();
  await shot('key-policy');
  await page.getByRole('button', { name: 'Save policy' }).click();
  await page.locator('#policy-message', { hasText: 'Policy saved.' }).waitFor();

  step('schedule deletion');
  await page.getByRole('button', { name: 'Schedule deletion' }).first().click();
  await page.getByLabel('Waiting period (days, 7–30)').fill('7');
  await page.getByRole('button', { name: 'Confirm deletion' }).click();
  await page.getByRole('button', { name: 'Cancel deletion' }).waitFor();
  await page.getByText('PendingDeletion').first().waitFor();

  step('the audit view shows those actions, made by the console');
  await page.getByRole('link', { name: 'Audit trail' }).click();
  await page.getByRole('heading', { name: 'Audit trail' }).waitFor();
  const filter = page.getByRole('form', { name: 'Filter audit records' });
  await filter.getByLabel('Key').fill(keyId);
  // Each action by name (the server's lookup attribute), this key's records on the page.
  for (const [event, error] of [['CreateKey', ''], ['PutKeyPolicy', ''], ['ScheduleKeyDeletion', ''], ['PutKeyPolicy', 'MalformedPolicyDocumentException']]) {
    await filter.getByLabel('Event name').fill(event);
    await filter.getByLabel('Error code').fill(error || '-');
    for (let i = 0; ; i += 1) {
      await filter.getByRole('button', { name: 'Apply filters' }).click();
      const rows = page.locator('tbody tr', { hasText: event });
      await page.locator('table').waitFor();
      if (await rows.filter({ hasText: 'ferrokms-console' }).count()) break;
      if (i > 20) throw new Error(`the audit view lacks the console's ${event} ${error}`);
      await page.waitForTimeout(500);
    }
  }
  step('audit filters: error code and time');
  const names = await page.locator('tbody tr td:nth-child(2)').allTextContents();
  if (names.some((n) => n !== 'PutKeyPolicy')) throw new Error(`event filter shows ${names}`);
  const errors = await page.locator('tbody tr td:nth-child(6)').allTextContents();
  if (errors.some((n) => n !== 'MalformedPolicyDocumentException')) throw new Error(`error filter shows ${errors}`);
  await filter.getByLabel('Event name').fill('');
  await filter.getByLabel('Error code').fill('');
  const tomorrow = new Date(Date.now() + 86400000);
  const local = new Date(tomorrow.getTime() - tomorrow.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  await filter.getByLabel('From').fill(local);
  await filter.getByRole('button', { name: 'Apply filters' }).click();
  await page.locator('tbody td', { hasText: 'None.' }).waitFor();
  await filter.getByLabel('From').fill('');
  await filter.getByRole('button', { name: 'Apply filters' }).click();
  await page.locator('tbody tr', { hasText: 'ferrokms-console' }).first().waitFor();
  await page.getByRole('button', { name: 'Details' }).first().click();
  await page.locator('pre', { hasText: '"userAgent": "ferrokms-console"' }).first().waitFor();
  await page.getByRole('button', { name: 'Verify chain' }).click();
  await page.locator('#chain-status', { hasText: 'Chain intact' }).waitFor({ timeout: 20000 });
  await shot('audit');

  step('principals');
  await page.getByRole('link', { name: 'Principals' }).click();
  await page.getByRole('heading', { name: 'Principals' }).waitFor();
  await page.locator('table caption', { hasText: 'Users in account' }).waitFor();
  await page.getByRole('cell', { name: 'alice', exact: true }).waitFor();
  await shot('principals');
  await page.getByRole('button', { name: 'Roles' }).click();
  await page.getByRole('cell', { name: 'deployer', exact: true }).waitFor();
  await page.getByRole('button', { name: 'Policies' }).click();
  await page.getByRole('cell', { name: 'KeyReaders', exact: true }).waitFor();

  step('dashboard');
  await page.getByRole('link', { name: 'Dashboard' }).click();
  await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
  // Three sampling intervals (the server samples every 5 s), for charts worth a screenshot.
  for (let i = 0; ; i += 1) {
    if (await page.locator('.chart path.line').count() >= 3 && await page.getByText(/[3-9] intervals shown/).count()) break;
    if (i > 40) throw new Error('the dashboard drew no lines');
    await page.waitForTimeout(500);
    await page.getByRole('link', { name: 'Keys' }).click();
    await page.getByRole('link', { name: 'Dashboard' }).click();
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
  }
  await shot('dashboard');

  step('sign out ends the session');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('Access key ID').waitFor();
  await page.getByRole('button', { name: 'Sign out' }).waitFor({ state: 'hidden' });
  const status = await page.evaluate(async () => (await fetch('/console/api/session')).status);
  if (status !== 401) throw new Error(`session still alive after sign-out: ${status}`);
  await page.reload();
  await page.getByLabel('Access key ID').waitFor();

  step('a user who may list keys but not describe them sees the refusal, as the CLI would');
  await page.getByLabel('Access key ID').fill(LISTER_ACCESS_KEY_ID);
  await page.getByLabel('Secret access key').fill(LISTER_SECRET_ACCESS_KEY);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Keys' }).waitFor();
  await page.locator('tbody td.error', { hasText: 'AccessDeniedException' }).first().waitFor();
  if (await page.getByRole('button', { name: 'Disable' }).count()) throw new Error('actions offered on keys the user cannot describe');
  await page.getByRole('link', { name: 'Principals' }).click();
  await page.locator('p.error', { hasText: 'AccessDenied' }).waitFor();
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('Access key ID').waitFor();

  if (accessibility.length) throw new Error(`accessibility violations:\n${accessibility.join('\n')}`);
  if (problems.length) throw new Error(problems.join('\n'));
  console.log('console e2e: ok');
} catch (err) {
  console.error(`console e2e failed: ${err.stack || err}`);
  if (FAILURE_SCREENSHOT) {
    try {
      await page.screenshot({ path: FAILURE_SCREENSHOT });
      console.error(`screenshot of the failure: ${FAILURE_SCREENSHOT}`);
    } catch { /* best effort */ }
  }
  process.exitCode = 1;
} finally {
  await browser.close();
}
