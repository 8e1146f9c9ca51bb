// A newcomer's first minutes on `slipway serve --demo` with no mail server, in a real
// browser (playwright-core in Debian's headless Chromium): sign up (the demo counts the
// address as verified at once and says so), sign in, take Nimbus DB's free Developer tier
// (license accepted), read the pull command on /subscriptions, then create an access token
// on /settings/tokens with the keyboard only and read it with its `docker login` line;
// create an organization on /settings and invite a member on its members page, by keyboard.
// axe-core checks the new pages; the sign-up and tokens pages also work with JavaScript off.
//
// Run by tests/e2e/newcomer.sh, which then logs in and pulls with a real Docker Engine
// using exactly the lines these pages showed (written to E2E_STATE_DIR). By hand:
//
//   slipway serve --demo --data-dir DIR   (no [mail] configured)
//   E2E_BASE_URL=http://127.0.0.1:PORT E2E_STATE_DIR=DIR2 node --test tests/browser/newcomer.test.mjs
//
// The steps depend on each other: after a failure the rest are skipped.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { BASE, Journey, axeOn, axeProblems, oneLine, press, shot, signIn } from './harness.mjs';

const STATE_DIR = process.env.E2E_STATE_DIR || '';
const PRODUCT = { path: '/products/nimbus/nimbus-db', repo: 'nimbus/nimbus-db', tier: 'Developer' };
const ORG = `crew-${randomBytes(3).toString('hex')}`;
const account = {
    name: `newcomer-${randomBytes(3).toString('hex')}`,
    password: `first steps ${randomBytes(6).toString('hex')}`,
};
account.email = `${account.name}@example.com`;

const journey = new Journey('newcomer');
let page;

before(async () => {
    await journey.launch();
    page = await journey.page();
});

after(() => journey.close());

const step = (name, fn) => journey.step(name, () => page, fn);
const text = async () => oneLine(await page.locator('main').innerText());
const url = (path) => `${BASE}${path}`;

function writeState(name, value) {
    assert.ok(STATE_DIR, 'set E2E_STATE_DIR: the Docker Engine checks read what the pages showed from there');
    mkdirSync(STATE_DIR, { recursive: true });
    writeFileSync(join(STATE_DIR, name), value);
}

step('sign up: the demo without a mail server verifies the address at once', async (t) => {
    await page.goto(url('/signup'));
    const form = page.locator('form#signup');
    await form.locator('input[name="name"]').fill(account.name);
    await form.locator('input[name="email"]').fill(account.email);
    await form.locator('input[name="password"]').fill(account.password);
    await press(page, form.locator('button[type="submit"]'));
    assert.equal(new URL(page.url()).pathname, '/signup/verified');
    const said = await text();
    t.diagnostic(said);
    assert.match(said, /no mail server/i);
    t.diagnostic(`screenshot ${await shot(page, 'newcomer-signed-up')}`);
    await press(page, page.locator('main a[href="/signin"]'));
    assert.equal(new URL(page.url()).pathname, '/signin');
});

step('sign in', async () => {
    await signIn(page, account.name, account.password);
});

step('the free Developer tier of Nimbus DB, license accepted: /subscriptions shows the pull command', async (t) => {
    await page.goto(url(PRODUCT.path));
    const install = oneLine(await page.locator('section[aria-labelledby="install-h"]').innerText());
    const host = new URL(BASE).host;
    assert.ok(install.includes(`docker pull ${host}/${PRODUCT.repo}`), `the install text names this registry (${host}): ${install}`);
    assert.ok(!install.includes('{{registry}}'), install);
    const form = page.locator('section#tiers form.get-tier').filter({ hasText: PRODUCT.tier });
    await form.locator('input[name="accept_license"]').check();
    await press(page, form.locator('button[type="submit"]'));
    assert.equal(new URL(page.url()).pathname, '/subscriptions');
    const commands = await page.locator('li.subscription code.pull-command').allInnerTexts();
    const pull = commands.map((c) => c.trim()).find((c) => c.startsWith(`docker pull ${host}/${PRODUCT.repo}:`));
    assert.ok(pull, `a pull command for ${PRODUCT.repo} on ${host}: ${JSON.stringify(commands)}`);
    t.diagnostic(`pull command: ${pull}`);
    assert.ok((await text()).includes(`docker login ${host}`), 'the login hint names the registry');
    writeState('pull-command', pull);
    t.diagnostic(`screenshot ${await shot(page, 'newcomer-subscriptions')}`);
});

step('a token made on /settings/tokens with the keyboard only, shown once with its docker login line', async (t) => {
    await page.goto(url('/'));
    // From the header's account link to the account page and its tokens link, by keyboard.
    await page.locator('a#account').focus();
    await Promise.all([page.waitForURL((u) => u.pathname === '/settings'), page.keyboard.press('Enter')]);
    await page.locator('a#tokens-link').focus();
    await Promise.all([page.waitForURL((u) => u.pathname === '/settings/tokens'), page.keyboard.press('Enter')]);
    const focusOn = async (selector, max = 60) => {
        for (let i = 0; i < max; i += 1) {
            if (await page.evaluate((s) => document.activeElement?.matches(s), selector)) return;
            await page.keyboard.press('Tab');
        }
        throw new Error(`Tab never reached ${selector}`);
    };
    await focusOn('#token-name');
    await page.keyboard.type('laptop');
    await page.keyboard.press('Tab'); // expiry: keep 90 days
    await page.keyboard.press('Tab');
    await page.keyboard.type('nimbus/*');
    await focusOn('input[name="pull"]');
    assert.ok(await page.locator('input[name="pull"]').isChecked(), 'pull is ticked by default');
    await focusOn('form#create-token button[type="submit"]');
    await Promise.all([page.waitForLoadState('load'), page.keyboard.press('Enter')]);
    const secret = await page.locator('#new-token-secret').inputValue();
    assert.match(secret, /^slw_[0-9a-f]{64}$/);
    const login = oneLine(await page.locator('#docker-login-command').innerText());
    const host = new URL(BASE).host;
    assert.equal(login, `docker login ${host} -u ${account.name}`);
    const stdinLine = oneLine(await page.locator('#new-token code').last().innerText());
    assert.equal(stdinLine, `echo "$TOKEN" | docker login ${host} -u ${account.name} --password-stdin`);
    assert.ok(oneLine(await page.locator('table#tokens').innerText()).includes('nimbus/*: pull'));
    writeState('token', secret);
    writeState('login-command', stdinLine);
    t.diagnostic(`screenshot ${await shot(page, 'newcomer-token-created')}`);
    await page.reload();
    assert.equal(await page.locator('#new-token-secret').count(), 0, 'the secret is shown once only');
    t.diagnostic(`screenshot ${await shot(page, 'newcomer-tokens-list')}`);
});

step('an organization made on /settings and a member invited on its members page, by keyboard only', async (t) => {
    await page.goto(url('/settings'));
    assert.ok((await text()).includes(account.email), 'the profile shows the address');
    t.diagnostic(`screenshot ${await shot(page, 'newcomer-settings')}`);
    await page.locator('#org-name').focus();
    await page.keyboard.type(ORG);
    await Promise.all([page.waitForURL((u) => u.pathname === `/orgs/${ORG}/members`), page.keyboard.press('Enter')]);
    assert.match(await text(), /is created, with you as its owner/);
    await page.locator('#invite-email').focus();
    await page.keyboard.type('teammate@example.com');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'invite-role');
    await page.keyboard.press('ArrowDown'); // viewer -> maintainer
    assert.equal(await page.locator('#invite-role').inputValue(), 'maintainer');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Send the invitation');
    await Promise.all([page.waitForURL((u) => u.search === '?done=invited'), page.keyboard.press('Enter')]);
    assert.match(await text(), /The invitation is on its way/);
    t.diagnostic(`screenshot ${await shot(page, 'newcomer-org-members')}`);
});

step('a robot added on the members page, its token shown once with its docker login line', async (t) => {
    await page.goto(url(`/orgs/${ORG}/members`));
    await page.locator('#robot-name').fill('ci');
    await page.locator('#robot-role').selectOption('maintainer');
    await press(page, page.locator('form#add-robot button[type="submit"]'));
    assert.match(await text(), /The robot is added/);
    const form = page.locator('form.robot-token').first();
    await form.locator('input[name="name"]').fill('deploy');
    await form.locator('input[name="push"]').check();
    await press(page, form.locator('button[type="submit"]'));
    assert.match(await page.locator('#new-robot-token-secret').inputValue(), /^slw_/);
    assert.match(await page.locator('#robot-login-command').innerText(), new RegExp(` -u ${ORG}\\+ci$`));
    t.diagnostic(`screenshot ${await shot(page, 'newcomer-robot-token')}`);
});

step('accessibility: axe-core finds no serious or critical violations on the new pages', async (t) => {
    const paths = ['/settings', `/orgs/${ORG}/members`, '/settings/tokens', '/signup/verified', '/signup/sent', '/verify-email/resend', '/invitations/accept?code=unknown', '/subscriptions'];
    const storageState = await page.context().storageState();
    assert.deepEqual(await axeProblems(journey.browser, t, BASE, paths, { storageState, shots: 'newcomer' }), []);
});

step('JavaScript off: sign up and the tokens page still work', async () => {
    const context = await journey.browser.newContext({ viewport: { width: 1280, height: 900 }, javaScriptEnabled: false });
    try {
        const p = await context.newPage();
        const name = `nojs-${randomBytes(3).toString('hex')}`;
        await p.goto(url('/signup'));
        await p.locator('form#signup input[name="name"]').fill(name);
        await p.locator('form#signup input[name="email"]').fill(`${name}@example.com`);
        await p.locator('form#signup input[name="password"]').fill(account.password);
        await press(p, p.locator('form#signup button[type="submit"]'));
        assert.equal(new URL(p.url()).pathname, '/signup/verified');
        await signIn(p, name, account.password);
        await p.goto(url('/settings/tokens'));
        await p.locator('#token-name').fill('no-js');
        await p.locator('#token-api').selectOption('read');
        await press(p, p.locator('form#create-token button[type="submit"]'));
        assert.match(await p.locator('#new-token-secret').inputValue(), /^slw_/);
        const revoke = p.locator('table#tokens form button[aria-label="Revoke no-js"]');
        await press(p, revoke);
        assert.equal(new URL(p.url()).pathname + new URL(p.url()).search, '/settings/tokens?revoked=1');
        assert.ok(oneLine(await p.locator('table#tokens').innerText()).includes('revoked'));
    } finally {
        await context.close();
    }
});

/// RFC 6238 with node's own HMAC-SHA-1, independent of the server's implementation: the
/// code an authenticator app shows for a base32 `secret` at `ms`.
function totp(secret, ms = Date.now()) {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
    let bits = 0;
    let value = 0;
    const key = [];
    for (const c of secret.replace(/[\s=]/g, '').toUpperCase()) {
        value = ((value << 5) | alphabet.indexOf(c)) & 0xffff;
        bits += 5;
        if (bits >= 8) {
            key.push((value >>> (bits - 8)) & 0xff);
            bits -= 8;
        }
    }
    const counter = Buffer.alloc(8);
    counter.writeBigUInt64BE(BigInt(Math.floor(ms / 30000)));
    const mac = createHmac('sha1', Buffer.from(key)).update(counter).digest();
    const offset = mac[mac.length - 1] & 0xf;
    return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1000000).padStart(6, '0');
}

step('two-factor sign-in: set up with a code from an independent TOTP, recovery codes shown once; the next sign-in takes a recovery code', async (t) => {
    await page.goto(url('/settings/two-factor'));
    await press(page, page.locator('form#two-factor-begin button'));
    const secret = await page.locator('#two-factor-secret').innerText();
    assert.match(secret.replace(/\s/g, ''), /^[A-Z2-7]{32}$/);
    assert.equal(await page.locator('figure.qr svg').count(), 1, 'a QR code to scan');
    t.diagnostic(`screenshot ${await shot(page, 'newcomer-two-factor-setup')}`);
    const storageState = await page.context().storageState();
    const problems = await axeProblems(journey.browser, t, BASE, ['/settings/two-factor'], { storageState });
    await page.locator('#two-factor-setup-code').fill(totp(secret));
    await press(page, page.locator('form#two-factor-enable button'));
    const codes = await page.locator('#recovery-codes li').allInnerTexts();
    assert.equal(codes.length, 10, await text());
    t.diagnostic(`screenshot ${await shot(page, 'newcomer-recovery-codes')}`);

    // Signed out, the password alone leads to the code page; a recovery code finishes it.
    await press(page, page.locator('form[action="/signout"] button'));
    await page.goto(url('/signin'));
    await page.locator('form#signin input[name="name"]').fill(account.name);
    await page.locator('form#signin input[name="password"]').fill(account.password);
    await press(page, page.locator('form#signin button[type="submit"]'));
    assert.equal(new URL(page.url()).pathname, '/signin/two-factor');
    assert.match(await text(), /access token/, 'the page says docker login takes an access token');
    t.diagnostic(`screenshot ${await shot(page, 'newcomer-signin-two-factor')}`);
    const context = await journey.browser.newContext({ bypassCSP: true, storageState: await page.context().storageState() });
    try {
        const p = await context.newPage();
        await p.goto(url('/signin/two-factor'));
        problems.push(...await axeOn(p, t, '/signin/two-factor'));
    } finally {
        await context.close();
    }
    await page.locator('#two-factor-code-input').fill(codes[0]);
    await press(page, page.locator('form#two-factor-code button'));
    assert.equal(new URL(page.url()).pathname, '/');
    assert.ok(oneLine(await page.locator('a#account').innerText()).includes(account.name));
    await page.goto(url('/settings/two-factor'));
    assert.match(await text(), /9 unused recovery codes/);

    // New recovery codes: the page that shows them is a form's answer, checked there.
    const fresh = await journey.browser.newContext({ bypassCSP: true, storageState: await page.context().storageState() });
    try {
        const p = await fresh.newPage();
        await p.goto(url('/settings/two-factor'));
        await p.locator('#new-codes-password').fill(account.password);
        await press(p, p.locator('form#two-factor-new-codes button'));
        assert.equal(await p.locator('#recovery-codes li').count(), 10);
        problems.push(...await axeOn(p, t, 'recovery codes'));
    } finally {
        await fresh.close();
    }
    assert.deepEqual(problems, []);
});

step('single sign-on: "Sign in with Corp SSO", the provider\'s own login form, back signed in to a new account', async (t) => {
    const provider = process.env.E2E_OIDC_PROVIDER;
    assert.ok(provider, 'set E2E_OIDC_PROVIDER: tests/e2e/newcomer.sh starts the provider');
    const context = await journey.browser.newContext({ viewport: { width: 1280, height: 900 } });
    try {
        const p = await context.newPage();
        await p.goto(url('/signin'));
        await Promise.all([p.waitForURL((u) => u.origin === provider), p.locator('#sso a', { hasText: 'Sign in with Corp SSO' }).click()]);
        await p.locator('#username').fill('test-user2');
        await p.locator('#password').fill('verysecure');
        t.diagnostic(`screenshot ${await shot(p, 'newcomer-sso-provider-login')}`);
        await Promise.all([p.waitForURL((u) => u.origin === BASE && u.pathname === '/'), p.locator('button[type="submit"]').click()]);
        assert.ok(oneLine(await p.locator('a#account').innerText()).includes('test-user2'));
        await p.goto(url('/settings'));
        assert.match(oneLine(await p.locator('main').innerText()), /test-user2@zitadel\.ch/);
        t.diagnostic(`screenshot ${await shot(p, 'newcomer-sso-signed-in')}`);
    } finally {
        await context.close();
    }
});

test('no JavaScript errors on the newcomer pages', (t) => {
    for (const e of journey.pageErrors) t.diagnostic(e);
    assert.deepEqual(journey.pageErrors, []);
});
