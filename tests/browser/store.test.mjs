// The web store in a real browser: one customer's journey through Slipway's store front,
// driven by playwright-core in Debian's headless Chromium (never a downloaded browser).
//
// Normally run by tests/e2e/browser.sh, which starts Slipway (demo content, authentication
// enforced, mail to an SMTP sink) and then pulls the subscribed image with real clients.
// By hand, against a server you started:
//
//   E2E_BASE_URL=http://127.0.0.1:PORT E2E_MAILDIR=DIR node --test tests/browser/store.test.mjs
//
// Environment (harness variables are E2E_*: SLIPWAY_* would configure the server):
//   E2E_BASE_URL    the store, http://127.0.0.1:PORT (required)
//   E2E_MAILDIR     the maildir the SMTP sink delivers to (aiosmtpd's Mailbox handler)
//   E2E_ARTIFACTS   where screenshots go (default target/test-artifacts/browser/manual)
//   E2E_STATE_DIR   if set, what the real clients need is written there: user, password,
//                   pull-ref (from /subscriptions), versions.tsv (the tier's tags and digests)
//   E2E_CHROMIUM    the browser (default /usr/bin/chromium)
//
// The steps run in order and depend on each other: after a failure the rest are skipped.
// Each step's notes are test diagnostics ("# ..." after its TAP line).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { axeProblems } from './harness.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const BASE = (process.env.E2E_BASE_URL || '').replace(/\/+$/, '');
const MAILDIR = process.env.E2E_MAILDIR || '';
const ARTIFACTS = resolve(process.env.E2E_ARTIFACTS || join(HERE, '../../target/test-artifacts/browser/manual'));
const STATE_DIR = process.env.E2E_STATE_DIR || '';
const CHROMIUM = process.env.E2E_CHROMIUM || '/usr/bin/chromium';

// The demo product this journey buys (see `slipway demo`).
const PRODUCT = { name: 'Nimbus DB', path: '/products/nimbus/nimbus-db', repo: 'nimbus/nimbus-db', tag: '7.2', tier: 'Developer' };

const STEP_TIMEOUT_MS = 120_000;
const ACTION_TIMEOUT_MS = 15_000;
const NAVIGATION_TIMEOUT_MS = 30_000;
const MAIL_TIMEOUT_MS = 45_000;

const account = {
    name: `shopper-${randomBytes(4).toString('hex')}`,
    password: `pw-${randomBytes(12).toString('hex')}`,
};
account.email = `${account.name}@example.com`;

let browser;
let context;
let page;
// Uncaught exceptions and console errors of the store's pages, checked in the last step
// (failed resource loads are the server's status codes, e.g. an error page's 422: noted only).
const pageErrors = [];
const resourceNotes = [];
let broken = null; // the first step that failed

before(async () => {
    assert.ok(BASE.startsWith('http://') || BASE.startsWith('https://'), 'set E2E_BASE_URL to the store, e.g. http://127.0.0.1:5000');
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/install-test-deps (it installs Debian's chromium)`);
    mkdirSync(ARTIFACTS, { recursive: true });
    const args = [];
    // Chromium refuses to run as root with its sandbox on.
    if (process.getuid?.() === 0) args.push('--no-sandbox');
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args, timeout: 60_000 });
    context = await newContext();
    page = await context.newPage();
});

after(async () => {
    await browser?.close().catch(() => {});
});

async function newContext() {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    ctx.setDefaultTimeout(ACTION_TIMEOUT_MS);
    ctx.setDefaultNavigationTimeout(NAVIGATION_TIMEOUT_MS);
    ctx.on('page', watch);
    return ctx;
}

function watch(p) {
    p.on('pageerror', (e) => pageErrors.push(`${p.url()}: uncaught ${e.message}`));
    p.on('console', (m) => {
        if (m.type() !== 'error') return;
        const line = `${p.url()}: console error: ${m.text()}${m.location()?.url ? ` (${m.location().url})` : ''}`;
        (m.text().startsWith('Failed to load resource') ? resourceNotes : pageErrors).push(line);
    });
}

// step(NAME, FN, {independent}): one test; skipped once an earlier step failed (unless
// independent of them); a failure leaves a screenshot failure-<step>.png beside the others.
function step(name, fn, { independent = false } = {}) {
    test(name, { timeout: STEP_TIMEOUT_MS }, async (t) => {
        if (broken && !independent) {
            t.skip(`not run: the earlier step "${broken}" failed`);
            return;
        }
        try {
            await fn(t);
        } catch (e) {
            broken = name;
            if (page) {
                t.diagnostic(`page at failure: ${page.url()}`);
                await shot(`failure-${slug(name)}`).catch(() => {});
                const text = await page.locator('body').innerText({ timeout: 2000 }).catch(() => '');
                if (text) t.diagnostic(`page text: ${oneLine(text).slice(0, 600)}`);
            }
            throw e;
        }
    });
}

const slug = (s) => s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 60);
const oneLine = (s) => s.replace(/\s+/g, ' ').trim();
const url = (path) => `${BASE}${path}`;

async function shot(name, on = page) {
    const file = join(ARTIFACTS, `${name}.png`);
    await on.screenshot({ path: file, fullPage: true });
    return file;
}

// goto(PATH): navigate; the response must not be an error.
async function goto(path) {
    const response = await page.goto(url(path));
    assert.ok(response, `no response for ${path}`);
    assert.ok(response.status() < 400, `GET ${path} answered ${response.status()}`);
    return response;
}

// Every store page carries the header search form.
async function expectHeader() {
    assert.equal(await page.locator('form#search').count(), 1, `form#search on ${page.url()}`);
    assert.equal(await page.locator('form#search input#search-q[name="q"]').count(), 1, `input#search-q[name=q] in form#search on ${page.url()}`);
}

// submit(FORM_LOCATOR): click the form's submit control and wait for the page it leads to.
async function submit(form) {
    const button = form.locator('button[type="submit"], button:not([type]), input[type="submit"]').first();
    await button.click();
    await page.waitForLoadState('load');
}

function writeState(name, value) {
    if (!STATE_DIR) return;
    mkdirSync(STATE_DIR, { recursive: true });
    writeFileSync(join(STATE_DIR, name), value);
}

// ------------------------------------------------------------------------------ mail
// A message's readable text: headers plus every part decoded (base64, quoted-printable).
function decodeMessage(raw) {
    const split = raw.search(/\r?\n\r?\n/);
    const head = split < 0 ? raw : raw.slice(0, split);
    const body = split < 0 ? '' : raw.slice(split).replace(/^\r?\n\r?\n/, '');
    const headers = {};
    for (const line of head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
        const i = line.indexOf(':');
        if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    const type = headers['content-type'] || 'text/plain';
    const boundary = /boundary="?([^";]+)"?/i.exec(type)?.[1];
    let text;
    if (/^multipart\//i.test(type) && boundary) {
        text = body
            .split(`--${boundary}`)
            .slice(1)
            .filter((part) => !part.startsWith('--'))
            .map((part) => decodeMessage(part.replace(/^\r?\n/, '')).text)
            .join('\n');
    } else {
        const encoding = (headers['content-transfer-encoding'] || '').toLowerCase();
        if (encoding === 'base64') {
            text = Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
        } else if (encoding === 'quoted-printable') {
            text = Buffer.from(
                body.replace(/=\r?\n/g, '').replace(/=([0-9A-Fa-f]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16))),
                'latin1',
            ).toString('utf8');
        } else {
            text = body;
        }
    }
    return { headers, text };
}

// The newest message to RECIPIENT in the maildir, waiting for it to arrive.
async function waitForMail(recipient) {
    assert.ok(MAILDIR, 'set E2E_MAILDIR to the SMTP sink\'s maildir');
    const deadline = Date.now() + MAIL_TIMEOUT_MS;
    for (;;) {
        const files = ['new', 'cur']
            .map((d) => join(MAILDIR, d))
            .filter((d) => existsSync(d))
            .flatMap((d) => readdirSync(d).map((f) => join(d, f)))
            .sort((a, b) => statSync(a).mtimeMs - statSync(b).mtimeMs);
        const found = files
            .map((f) => decodeMessage(readFileSync(f, 'utf8')))
            .filter((m) => (m.headers.to || '').toLowerCase().includes(recipient.toLowerCase()));
        if (found.length) return found[found.length - 1];
        if (Date.now() > deadline) {
            assert.fail(`no mail to ${recipient} within ${MAIL_TIMEOUT_MS / 1000}s (${files.length} messages in ${MAILDIR})`);
        }
        await new Promise((r) => setTimeout(r, 250));
    }
}

// ------------------------------------------------------------------------- the journey
step('home page renders with the header search form', async (t) => {
    await goto('/');
    await expectHeader();
    t.diagnostic(`title: ${await page.title()}`);
    t.diagnostic(`screenshot ${await shot('home')}`);
});

step('sign up with a new account', async (t) => {
    await goto('/signup');
    await expectHeader();
    const form = page.locator('form#signup');
    await form.locator('input[name="name"]').fill(account.name);
    await form.locator('input[name="email"]').fill(account.email);
    await form.locator('input[name="password"]').fill(account.password);
    await submit(form);
    const text = oneLine(await page.locator('body').innerText());
    t.diagnostic(`after sign-up: ${page.url()}: ${text.slice(0, 300)}`);
    assert.match(text, /check\s+(your\s+)?(e-?mail|inbox)/i, 'the page after sign-up tells to check the email');
    writeState('user', account.name);
    writeState('password', account.password);
});

step('verification mail arrives and its link verifies the address', async (t) => {
    const mail = await waitForMail(account.email);
    t.diagnostic(`mail: ${mail.headers.subject || '(no subject)'}`);
    const link = /(https?:\/\/[^\s"'<>]+\/verify-email\?token=[A-Za-z0-9_-]+)/.exec(mail.text)?.[1];
    assert.ok(link, `a /verify-email?token= link in the mail:\n${mail.text}`);
    assert.equal(new URL(link).origin, new URL(BASE).origin, 'the link points at this server');
    const response = await page.goto(link);
    assert.ok(response.status() < 400, `the verification link answered ${response.status()}`);
    const text = oneLine(await page.locator('body').innerText());
    t.diagnostic(`verification page: ${text.slice(0, 200)}`);
    assert.match(text, /your email address is verified/i);
});

step('sign in; the header shows the account', async (t) => {
    await goto('/signin');
    const form = page.locator('form#signin');
    await form.locator('input[name="name"]').fill(account.name);
    await form.locator('input[name="password"]').fill(account.password);
    await submit(form);
    await page.waitForURL((u) => u.pathname === '/', { timeout: NAVIGATION_TIMEOUT_MS });
    const header = page.locator('a#account');
    await header.waitFor({ state: 'visible' });
    const text = oneLine(await header.innerText());
    t.diagnostic(`a#account: "${text}" -> ${await header.getAttribute('href')}`);
    assert.ok(text.includes(account.name), `a#account shows ${account.name}: "${text}"`);
});

step('typing "nimb" in the header search suggests Nimbus DB', async (t) => {
    await expectHeader();
    const box = page.locator('#search-q');
    const suggested = page.waitForResponse((r) => r.url().includes('/api/v1/search/suggest?'));
    await box.click();
    await box.pressSequentially('nimb', { delay: 80 });
    const response = await suggested;
    t.diagnostic(`typeahead request: ${response.url()} -> ${response.status()}`);
    assert.equal(response.status(), 200);
    const item = page.locator('ul#suggestions > li > a').filter({ hasText: PRODUCT.name });
    await item.first().waitFor({ state: 'visible' });
    const all = await page.locator('ul#suggestions > li > a').evaluateAll((as) => as.map((a) => `${a.textContent.trim()} -> ${a.getAttribute('href')}`));
    t.diagnostic(`suggestions: ${all.join(' | ')}`);
    const href = await item.first().getAttribute('href');
    assert.equal(new URL(href, BASE).pathname, PRODUCT.path, 'the suggestion links to the product page');
});

let unfilteredCount = 0;
step('search "database" from the header', async (t) => {
    const box = page.locator('#search-q');
    await box.fill('database');
    await box.press('Enter');
    await page.waitForURL((u) => u.pathname === '/search' && u.searchParams.get('q') === 'database');
    await page.waitForLoadState('load');
    await expectHeader();
    const results = page.locator('ol#results > li.result');
    unfilteredCount = await results.count();
    const certified = await page.locator('ol#results > li.result:has(.badge-certified)').count();
    t.diagnostic(`${unfilteredCount} results, ${certified} certified`);
    assert.ok(unfilteredCount > 0, 'results for "database"');
    t.diagnostic(`screenshot ${await shot('search')}`);
});

step('certified filter: every result certified, Nimbus DB among them', async (t) => {
    const box = page.locator('form#filters input#filter-certified[name="certified"][value="1"]');
    assert.equal(await box.count(), 1, 'form#filters has input#filter-certified[name=certified][value=1]');
    const isFiltered = (u) => u.pathname === '/search' && u.searchParams.get('certified') === '1';
    // With JavaScript the change may submit the form by itself; otherwise apply it.
    const autoSubmitted = page.waitForURL(isFiltered, { timeout: 3000 }).then(() => true, () => false);
    await box.check();
    if (await autoSubmitted) {
        t.diagnostic('the checkbox submitted the filters by itself');
    } else {
        await page.locator('form#filters button#apply-filters').click();
        await page.waitForURL(isFiltered);
    }
    await page.waitForLoadState('load');
    const u = new URL(page.url());
    t.diagnostic(`filtered: ${u.pathname}${u.search}`);
    assert.equal(u.searchParams.get('q'), 'database', 'the query is kept when filtering');
    const results = page.locator('ol#results > li.result');
    const count = await results.count();
    assert.ok(count > 0, 'certified results for "database"');
    assert.ok(count <= unfilteredCount, `the filter does not add results (${count} > ${unfilteredCount})`);
    const rows = await results.evaluateAll((lis) =>
        lis.map((li) => ({
            certified: !!li.querySelector('.badge-certified'),
            name: (li.querySelector('a.product-link')?.textContent || '').trim(),
            href: li.querySelector('a.product-link')?.getAttribute('href') || null,
        })),
    );
    t.diagnostic(`${count} results: ${rows.map((r) => `${r.name} (${r.href})${r.certified ? ' certified' : ''}`).join(' | ')}`);
    const uncertified = rows.filter((r) => !r.certified);
    assert.deepEqual(uncertified, [], 'every result shows .badge-certified');
    assert.ok(rows.every((r) => r.href), 'every result has a.product-link');
    assert.ok(rows.some((r) => new URL(r.href, BASE).pathname === PRODUCT.path), `${PRODUCT.name} (${PRODUCT.path}) is among the results`);
    if (!(await box.isChecked())) t.diagnostic('note: the certified checkbox is not shown checked on the filtered page');
    t.diagnostic(`screenshot ${await shot('search-certified')}`);
});

step('product page of Nimbus DB', async (t) => {
    const links = page.locator('ol#results > li.result a.product-link');
    const hrefs = await links.evaluateAll((as) => as.map((a) => a.href));
    const i = hrefs.findIndex((h) => new URL(h).pathname === PRODUCT.path);
    assert.ok(i >= 0, `a result links to ${PRODUCT.path}`);
    await links.nth(i).click();
    await page.waitForURL((u) => u.pathname === PRODUCT.path);
    await page.waitForLoadState('load');
    await expectHeader();
    assert.equal(oneLine(await page.locator('h1').first().innerText()), PRODUCT.name, 'h1 names the product');
    const tiers = await page.locator('section#tiers form.get-tier').count();
    t.diagnostic(`${tiers} tier forms`);
    assert.ok(tiers > 0, 'section#tiers has form.get-tier');
    t.diagnostic(`screenshot ${await shot('product')}`);
});

const versionDigests = new Map(); // tag -> digest, as the versions page shows them
step('all versions: tag 7.2 with its sha256 digest', async (t) => {
    const link = page.locator('a#view-versions');
    assert.equal(new URL(await link.getAttribute('href'), BASE).pathname, `${PRODUCT.path}/versions`);
    await link.click();
    await page.waitForURL((u) => u.pathname === `${PRODUCT.path}/versions`);
    await page.waitForLoadState('load');
    await expectHeader();
    // Column headings, if the table has them: a product with several tiers lists each
    // tier's repository, so a tag can appear once per tier (a "Tier" column tells them apart).
    const headings = await page.locator('table#versions thead th').evaluateAll((ths) => ths.map((th) => th.textContent.trim()));
    const tagCol = Math.max(0, headings.findIndex((h) => /^tag/i.test(h)));
    const tierCol = headings.findIndex((h) => /^tier/i.test(h));
    const all = await page.locator('table#versions tr.version').evaluateAll((trs) =>
        trs.map((tr) => ({
            cells: [...tr.querySelectorAll('td, th')].map((c) => (c.innerText || c.textContent).replace(/\s+/g, ' ').trim()),
            html: tr.innerHTML,
        })),
    );
    t.diagnostic(`${all.length} versions; columns: ${headings.join(' | ') || '(no headings)'}`);
    for (const r of all.slice(0, 12)) t.diagnostic(`  ${r.cells.join(' | ')}`);
    assert.ok(all.length > 0, 'table#versions has tr.version rows');
    const rows = tierCol >= 0 ? all.filter((r) => r.cells[tierCol] === PRODUCT.tier) : all;
    assert.ok(rows.length > 0, `rows of the ${PRODUCT.tier} tier`);
    const row = rows.find((r) => r.cells[tagCol] === PRODUCT.tag);
    assert.ok(row, `a row for tag ${PRODUCT.tag}${tierCol >= 0 ? ` of the ${PRODUCT.tier} tier` : ''}`);
    // The full digest, in the text or an attribute (a UI may show it shortened).
    const digest = /sha256:[0-9a-f]{64}/.exec(row.cells.join(' '))?.[0] || /sha256:[0-9a-f]{64}/.exec(row.html)?.[0];
    assert.ok(digest, `the ${PRODUCT.tag} row carries a full sha256 digest: ${row.cells.join(' | ')}`);
    t.diagnostic(`${PRODUCT.tier} ${PRODUCT.tag}: ${digest}`);
    // The tier's tags with their digests, for the clients to compare with the registry.
    for (const r of rows) {
        const d = /sha256:[0-9a-f]{64}/.exec(r.html)?.[0];
        if (d && r.cells[tagCol]) versionDigests.set(r.cells[tagCol], d);
    }
    writeState('versions.tsv', [...versionDigests].map(([tag, d]) => `${tag}\t${d}\n`).join(''));
    const text = row.cells.join(' ');
    assert.match(text, /\d+(\.\d+)?\s*(B|bytes|kB|KB|KiB|MB|MiB|GB|GiB)\b/, 'the row shows a size');
    assert.match(text, /\b(linux|windows)\/[a-z0-9]+/, 'the row shows platforms');
    t.diagnostic(`screenshot ${await shot('versions')}`);
});

// The Developer tier's form on the product page.
function developerForm() {
    return page.locator('section#tiers form.get-tier').filter({ hasText: PRODUCT.tier });
}

step('Developer tier without accepting the license: an error', async (t) => {
    await page.goBack();
    await page.waitForURL((u) => u.pathname === PRODUCT.path);
    await page.waitForLoadState('load');
    const form = developerForm();
    assert.equal(await form.count(), 1, `one form.get-tier for the ${PRODUCT.tier} tier`);
    const accept = form.locator('input[name="accept_license"]');
    assert.equal(await accept.count(), 1, 'the tier form has input[name=accept_license]');
    assert.equal(await accept.getAttribute('type'), 'checkbox');
    if (await accept.isChecked()) await accept.uncheck();
    const required = await accept.evaluate((e) => e.required);
    await submit(form);
    const error = page.locator('.error').first();
    await error.waitFor({ state: 'visible', timeout: 10_000 }).catch(() => {
        throw new Error(
            `no .error after submitting without the license (now at ${page.url()})` +
                (required ? '; the checkbox is `required`, so the browser itself blocks the submission and no .error is rendered' : ''),
        );
    });
    const text = oneLine(await error.innerText());
    t.diagnostic(`error at ${new URL(page.url()).pathname}: "${text}"`);
    assert.match(text, /licen[cs]e/i, 'the error mentions the license');
    assert.notEqual(new URL(page.url()).pathname, '/subscriptions', 'no subscription without accepting');
    t.diagnostic(`screenshot ${await shot('tier-error')}`);
});

step('Developer tier with the license accepted: /subscriptions shows the pull command', async (t) => {
    if ((await developerForm().count()) === 0) {
        t.diagnostic('the error page has no tier form: back to the product page');
        await goto(PRODUCT.path);
    }
    const form = developerForm();
    await form.locator('input[name="accept_license"]').check();
    await submit(form);
    await page.waitForURL((u) => u.pathname === '/subscriptions');
    await page.waitForLoadState('load');
    await expectHeader();
    const items = await page.locator('li.subscription').evaluateAll((lis) =>
        lis.map((li) => ({
            text: li.textContent.replace(/\s+/g, ' ').trim(),
            pulls: [...li.querySelectorAll('code.pull-command')].map((c) => c.textContent.trim()),
        })),
    );
    for (const i of items) t.diagnostic(`subscription: ${i.text.slice(0, 200)}`);
    const pulls = items.flatMap((i) => i.pulls);
    const host = new URL(BASE).host;
    const command = pulls.find((p) => p.includes(`/${PRODUCT.repo}:`) || p.includes(`/${PRODUCT.repo}@`));
    assert.ok(command, `a code.pull-command for ${PRODUCT.repo} in li.subscription: ${JSON.stringify(pulls)}`);
    t.diagnostic(`pull command: ${command}`);
    const ref = /^docker pull (\S+)$/.exec(command)?.[1];
    assert.ok(ref, `"docker pull REFERENCE": ${command}`);
    const [, refHost, refRepo, refTag] = /^([^/]+)\/(.+):([\w][\w.-]*)$/.exec(ref) || [];
    assert.equal(refHost, host, 'the reference names this server');
    assert.equal(refRepo, PRODUCT.repo, 'the reference names the tier\'s repository');
    // The newest tag is offered; it must be one the versions page lists.
    assert.ok(versionDigests.has(refTag), `the tag ${refTag} is on the versions page (${[...versionDigests.keys()].join(', ')})`);
    if (refTag !== PRODUCT.tag) t.diagnostic(`note: the pull command offers tag ${refTag}, not ${PRODUCT.tag}`);
    writeState('pull-ref', ref);
    t.diagnostic(`screenshot ${await shot('subscriptions')}`);
});

step('/subscriptions requires sign-in', async (t) => {
    const anonymous = await newContext();
    try {
        const p = await anonymous.newPage();
        const response = await p.goto(url('/subscriptions'));
        const where = new URL(p.url());
        t.diagnostic(`anonymous /subscriptions: ${response.status()} at ${where.pathname}${where.search}`);
        const refused = where.pathname === '/signin' || [401, 403].includes(response.status());
        assert.ok(refused, `redirected to /signin or refused (401/403); got ${response.status()} at ${where.pathname}`);
        assert.equal(await p.locator('li.subscription').count(), 0, 'no subscriptions shown');
        if (where.pathname === '/signin') {
            assert.equal(await p.locator('form#signin').count(), 1, 'the sign-in form');
            t.diagnostic(`next: ${where.searchParams.get('next') ?? '(none)'}`);
        }
    } finally {
        await anonymous.close();
    }
}, { independent: true });

step('keyboard: arrow keys and Enter pick a typeahead suggestion', async (t) => {
    await goto('/');
    const input = page.locator('#search-q');
    await input.focus();
    await page.keyboard.type('gatew', { delay: 30 });
    await page.locator('#suggestions li a').first().waitFor();
    await page.keyboard.press('ArrowDown');
    assert.equal(await page.locator('#suggestions a[aria-selected="true"]').count(), 1, 'ArrowDown selects a suggestion');
    await Promise.all([page.waitForURL((u) => u.pathname.startsWith('/products/')), page.keyboard.press('Enter')]);
    t.diagnostic(`Enter opened ${page.url()}`);
    assert.equal(new URL(page.url()).pathname, '/products/northwind/northwind-gateway');
}, { independent: true });

step('an invitation mailed to a new address: its link, sign-up and sign-in, then Accept on the invitation page', async (t) => {
    const org = `team-${randomBytes(3).toString('hex')}`;
    const friend = { name: `friend-${randomBytes(3).toString('hex')}`, password: `pw-${randomBytes(12).toString('hex')}` };
    friend.email = `${friend.name}@example.com`;
    await goto('/settings');
    await page.locator('#org-name').fill(org);
    await submit(page.locator('#org-name').locator('xpath=ancestor::form'));
    await page.locator('#invite-email').fill(friend.email);
    await submit(page.locator('form#invite'));
    assert.match(oneLine(await page.locator('main').innerText()), /The invitation is on its way/);
    const mail = await waitForMail(friend.email);
    const link = /(https?:\/\/[^\s"'<>]+\/invitations\/accept\?code=[A-Za-z0-9_-]+)/.exec(mail.text)?.[1];
    assert.ok(link, `an /invitations/accept?code= link in the mail:\n${mail.text}`);

    const context = await newContext();
    try {
        const p = await context.newPage();
        await p.goto(link);
        assert.equal(new URL(p.url()).pathname, '/signin', 'signed out, the link goes through sign-in');
        const back = new URL(p.url()).searchParams.get('next');
        await p.goto(`${BASE}/signup`);
        await p.locator('form#signup input[name="name"]').fill(friend.name);
        await p.locator('form#signup input[name="email"]').fill(friend.email);
        await p.locator('form#signup input[name="password"]').fill(friend.password);
        await Promise.all([p.waitForLoadState('load'), p.locator('form#signup button[type="submit"]').click()]);
        // The invitation is there already: wait for the newest message to be the link.
        let verify;
        for (let i = 0; i < 120 && !verify; i += 1) {
            verify = /(https?:\/\/[^\s"'<>]+\/verify-email\?token=[A-Za-z0-9_-]+)/.exec((await waitForMail(friend.email)).text)?.[1];
            if (!verify) await new Promise((r) => setTimeout(r, 250));
        }
        assert.ok(verify, 'the verification mail');
        await p.goto(verify);
        await p.goto(`${BASE}/signin?next=${encodeURIComponent(back)}`);
        await p.locator('form#signin input[name="name"]').fill(friend.name);
        await p.locator('form#signin input[name="password"]').fill(friend.password);
        await Promise.all([p.waitForURL((u) => u.pathname === '/invitations/accept'), p.locator('form#signin button[type="submit"]').click()]);
        assert.match(oneLine(await p.locator('main').innerText()), new RegExp(`invited to join the organization ${org} as viewer`));
        t.diagnostic(`screenshot ${await shot('invitation', p)}`);
        const path = new URL(p.url()).pathname + new URL(p.url()).search;
        assert.deepEqual(await axeProblems(browser, t, BASE, [path], { storageState: await context.storageState() }), []);
        await Promise.all([p.waitForLoadState('load'), p.locator('form#accept-invitation button').click()]);
        assert.match(oneLine(await p.locator('main').innerText()), new RegExp(`You are now a member of ${org}, as viewer`));
    } finally {
        await context.close();
    }
});

step('accessibility: axe-core finds no serious or critical violations', async (t) => {
    const paths = ['/', '/search?q=database', '/categories/databases', PRODUCT.path, `${PRODUCT.path}/versions`, '/publishers/nimbus', '/signin', '/signup', '/forgot-password', '/reset-password?token=abc'];
    assert.deepEqual(await axeProblems(browser, t, BASE, paths), []);
}, { independent: true });

step('responsive: a phone-sized screen needs no sideways scrolling', async (t) => {
    const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
    try {
        const p = await ctx.newPage();
        for (const [path, name] of [['/', 'mobile-home'], [PRODUCT.path, 'mobile-product'], ['/search?q=database', 'mobile-search']]) {
            await p.goto(url(path));
            const [scroll, client] = await p.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
            t.diagnostic(`${path}: scrollWidth ${scroll}, clientWidth ${client}`);
            assert.ok(scroll <= client + 1, `${path} overflows sideways (${scroll} > ${client})`);
            await p.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
        }
    } finally {
        await ctx.close();
    }
}, { independent: true });

const publisherOrg = `pub-${randomBytes(3).toString('hex')}`;

step('publisher portal: a profile with a logo, its company email verified', async (t) => {
    // A 512x512 PNG the store itself serves (the demo's logos), as the upload.
    await goto('/publishers/nimbus');
    const logoUrl = await page.locator('header img').first().getAttribute('src');
    const logo = Buffer.from(await (await page.request.get(url(logoUrl))).body());
    const logoFile = join(ARTIFACTS, 'upload-logo.png');
    writeFileSync(logoFile, logo);
    await goto('/publish/profile');
    const form = page.locator('form#profile');
    await form.locator('[name="org"]').fill(publisherOrg);
    await form.locator('[name="display_name"]').fill('Harbor Lights');
    await form.locator('[name="legal_name"]').fill('Harbor Lights B.V.');
    await form.locator('[name="website"]').fill('https://harbor-lights.example');
    await form.locator('[name="phone"]').fill('+31 20 555 0100');
    await form.locator('[name="email"]').fill(`legal@${publisherOrg}.example`);
    await form.locator('[name="logo"]').setInputFiles(logoFile);
    await form.locator('[name="story"]').fill('We build **lighthouses** for containers.');
    await submit(form);
    await page.waitForURL((u) => u.pathname === '/publish');
    const text = oneLine(await page.locator('main').innerText());
    assert.ok(text.includes('Harbor Lights') && text.includes('Email not verified'), text.slice(0, 300));
    const mail = await waitForMail(`legal@${publisherOrg}.example`);
    const link = /(https?:\/\/[^\s"'<>]+\/publishers\/verify-email\?token=[A-Za-z0-9_-]+)/.exec(mail.text)?.[1];
    assert.ok(link, `a verification link in:\n${mail.text}`);
    await page.goto(link);
    assert.match(oneLine(await page.locator('main').innerText()), /company email address of .* is verified/i);
    await goto('/publish');
    assert.ok(oneLine(await page.locator('main').innerText()).includes('Email verified'));
    t.diagnostic(`screenshot ${await shot('portal')}`);
});

step('publisher portal: a listing with a tier, previewed, then saved as a draft', async (t) => {
    await goto(`/publish/${publisherOrg}/products/new`);
    const form = page.locator('form#listing');
    await form.locator('[name="name"]').fill('Beacon Server');
    await form.locator('[name="short_description"]').fill('Guides your traffic home.');
    await form.locator('[name="category"]').selectOption('networking');
    await form.locator('[name="search_tags"]').fill('beacon, proxy');
    await form.locator('[name="long_description"]').fill('## Why\n\nBecause <script>alert(1)</script> ships are lost.');
    await form.locator('[name="support_url"]').fill('https://harbor-lights.example/help');
    await form.locator('[name="tier_0_name"]').fill('Community');
    await form.locator('[name="tier_0_access"]').selectOption('public');
    await form.locator('[name="tier_0_repository"]').fill(`${publisherOrg}/beacon`);
    await form.locator('[name="license_text"]').fill('Use it kindly.');
    await form.locator('button[value="preview"]').click();
    await page.waitForLoadState('load');
    const preview = oneLine(await page.locator('main').innerText());
    assert.ok(preview.includes('Preview of unsaved changes') && preview.includes('Beacon Server') && preview.includes('Guides your traffic home.'), preview.slice(0, 300));
    assert.equal(await page.locator('main script').count(), 0, 'Markdown script is not rendered');
    t.diagnostic(`screenshot ${await shot('listing-preview')}`);
    await page.goBack();
    await form.locator('button[value="save"]').click();
    await page.waitForURL((u) => u.pathname === `/publish/${publisherOrg}/products/beacon-server`);
    await goto(`/products/${publisherOrg}/beacon-server`);
    const draft = oneLine(await page.locator('main').innerText());
    assert.ok(draft.includes('Draft') && draft.includes('Use it kindly.'), draft.slice(0, 400));
    t.diagnostic(`screenshot ${await shot('listing-draft')}`);
});

test('no JavaScript errors on the store pages', (t) => {
    for (const n of resourceNotes) t.diagnostic(`note: ${n}`);
    for (const e of pageErrors) t.diagnostic(e);
    assert.deepEqual(pageErrors, []);
});
