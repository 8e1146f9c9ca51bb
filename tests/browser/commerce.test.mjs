// Buying in the web store in a real browser (playwright-core in Debian's headless Chromium):
// a signed-in customer buys Nimbus Cache Enterprise from its product page: checkout with
// the price, "Tax" and the total, billing details, the license, a declined test card and
// its message, then a good one; /subscriptions shows the subscription with its pull command
// and invoice; the invoice page; then the publisher's sales page, seen by a store
// administrator (E2E_SELLER), listing the sale with its refund button. No JavaScript errors.
//
// Run by tests/e2e/browser.sh after the store journey; it creates the customer (sign-up and
// its mail are store.test.mjs's part). By hand, against a demo store you started:
//
//   slipway admin create-user NAME --email NAME@example.com --password-stdin --data-dir DIR
//   E2E_BASE_URL=http://127.0.0.1:PORT E2E_CUSTOMER=NAME E2E_CUSTOMER_PASSWORD=PW \
//     node --test tests/browser/commerce.test.mjs
//
// Environment: E2E_BASE_URL, E2E_CUSTOMER and E2E_CUSTOMER_PASSWORD (required);
// E2E_ARTIFACTS (screenshots, default target/test-artifacts/browser/manual); E2E_CHROMIUM.
// The steps depend on each other: after a failure the rest are skipped.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { signIn } from './harness.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const BASE = (process.env.E2E_BASE_URL || '').replace(/\/+$/, '');
const USER = process.env.E2E_CUSTOMER || '';
const PASSWORD = process.env.E2E_CUSTOMER_PASSWORD || '';
const SELLER = process.env.E2E_SELLER || '';
const SELLER_PASSWORD = process.env.E2E_SELLER_PASSWORD || '';
const ARTIFACTS = resolve(process.env.E2E_ARTIFACTS || join(HERE, '../../target/test-artifacts/browser/manual'));
const CHROMIUM = process.env.E2E_CHROMIUM || '/usr/bin/chromium';

// The demo product bought: 49.00 USD a month, licensed, no trial (see `slipway demo`).
const PRODUCT = { name: 'Nimbus Cache', path: '/products/nimbus/nimbus-cache', tier: 'Enterprise', repo: 'nimbus/nimbus-cache-enterprise', price: '49.00 USD' };
const DECLINED_CARD = '4000 0000 0000 0002';
const GOOD_CARD = '4242 4242 4242 4242';

let browser;
let page;
const pageErrors = [];
let broken = null;

before(async () => {
    assert.ok(BASE.startsWith('http://') || BASE.startsWith('https://'), 'set E2E_BASE_URL to the store');
    assert.ok(USER && PASSWORD, 'set E2E_CUSTOMER and E2E_CUSTOMER_PASSWORD to a verified account');
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/install-test-deps`);
    mkdirSync(ARTIFACTS, { recursive: true });
    // Chromium refuses to run as root with its sandbox on.
    const args = process.getuid?.() === 0 ? ['--no-sandbox'] : [];
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args, timeout: 60_000 });
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    context.setDefaultTimeout(15_000);
    context.setDefaultNavigationTimeout(30_000);
    page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(`${page.url()}: uncaught ${e.message}`));
    page.on('console', (m) => {
        // A refused card answers 402 and Chromium logs the status as "Failed to load resource": not a script error.
        if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) pageErrors.push(`${page.url()}: ${m.text()}`);
    });
});

after(async () => {
    await browser?.close().catch(() => {});
});

function step(name, fn, { independent = false } = {}) {
    test(name, { timeout: 120_000 }, async (t) => {
        if (broken && !independent) {
            t.skip(`not run: the earlier step "${broken}" failed`);
            return;
        }
        try {
            await fn(t);
        } catch (e) {
            broken = name;
            t.diagnostic(`page at failure: ${page.url()}`);
            await shot(`failure-commerce-${name.toLowerCase().replace(/[^a-z0-9]+/g, '-').slice(0, 50)}`).catch(() => {});
            const text = await page.locator('main').innerText({ timeout: 2000 }).catch(() => '');
            if (text) t.diagnostic(`page text: ${oneLine(text).slice(0, 600)}`);
            throw e;
        }
    });
}

const oneLine = (s) => s.replace(/\s+/g, ' ').trim();

async function shot(name) {
    const file = join(ARTIFACTS, `${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    return file;
}

// Confirms the checkout form; when the billing details just given change the total, the
// page shows it (#checkout-notice) and asks to confirm again.
async function confirmCheckout(t, card) {
    const form = page.locator('form#checkout');
    await form.locator('#payment-method').fill(card);
    const accept = form.locator('input[name="accept_license"]');
    if ((await accept.count()) > 0) await accept.check();
    // The page that answers the form is a new document: its load event.
    const loaded = page.waitForEvent('load');
    await form.locator('button#confirm').click();
    await loaded;
    if (new URL(page.url()).pathname === '/checkout' && (await page.locator('#checkout-notice').count()) > 0) {
        t.diagnostic(`notice: ${oneLine(await page.locator('#checkout-notice').innerText())}`);
        await confirmCheckout(t, card);
    }
}

step('sign in as the customer', async () => {
    await signIn(page, USER, PASSWORD);
});

step('Nimbus Cache: the Enterprise tier\'s Buy leads to checkout with price, tax and total', async (t) => {
    await page.goto(`${BASE}${PRODUCT.path}`);
    const tier = page.locator('section#tiers .get-tier').filter({ has: page.locator('h3', { hasText: PRODUCT.tier }) });
    assert.equal(await tier.count(), 1, `one .get-tier for ${PRODUCT.tier}`);
    const buy = tier.locator('a.buy');
    t.diagnostic(`${oneLine(await buy.innerText())} -> ${await buy.getAttribute('href')}`);
    await buy.click();
    await page.waitForURL((u) => u.pathname === '/checkout');
    const summary = oneLine(await page.locator('#order-summary').innerText());
    t.diagnostic(`order: ${summary}`);
    assert.ok(summary.includes(PRODUCT.price), `the price ${PRODUCT.price}`);
    assert.match(summary, /\bTax\b/);
    assert.match(summary, /\bTotal\b.*\d+\.\d\d USD/);
    assert.ok((await page.locator('#test-cards').innerText()).includes(DECLINED_CARD), 'the sandbox lists its test cards');
});

step('billing details, the license and a declined card: the card\'s message', async (t) => {
    const billing = page.locator('form#checkout fieldset#billing');
    if ((await billing.locator('#billing-name').count()) > 0) {
        await billing.locator('#billing-name').fill('Browser Test Ltd');
        await billing.locator('#billing-country').fill('US');
        await billing.locator('#billing-postal').fill('94105');
    } else {
        t.diagnostic('the account has billing details already');
    }
    await confirmCheckout(t, DECLINED_CARD);
    assert.equal(new URL(page.url()).pathname, '/checkout', 'still at checkout');
    const error = oneLine(await page.locator('#checkout-error').innerText());
    t.diagnostic(`error: ${error}`);
    assert.match(error, /Your card was declined\./);
    assert.equal(await page.locator('#payment-method').inputValue(), '', 'the declined card is not kept');
    t.diagnostic(`screenshot ${await shot('checkout-declined')}`);
});

let invoiceHref = '';
step('a good card: /subscriptions shows the subscription, its pull command and invoice', async (t) => {
    await confirmCheckout(t, GOOD_CARD);
    await page.waitForURL((u) => u.pathname === '/subscriptions');
    const sub = page.locator('li.subscription').filter({ hasText: PRODUCT.name }).filter({ hasText: PRODUCT.tier });
    assert.equal(await sub.count(), 1, `one ${PRODUCT.name} ${PRODUCT.tier} subscription`);
    const text = oneLine(await sub.innerText());
    t.diagnostic(`subscription: ${text.slice(0, 300)}`);
    assert.equal(oneLine(await sub.locator('.badge.status').innerText()), 'Active');
    assert.ok(text.includes(`${PRODUCT.price} / month`), 'its price');
    const pull = oneLine(await sub.locator('code.pull-command').innerText());
    assert.match(pull, new RegExp(`^docker pull \\S+/${PRODUCT.repo}:\\S+$`));
    const link = sub.locator('a.invoice-link').first();
    invoiceHref = await link.getAttribute('href');
    assert.match(invoiceHref, /^\/invoices\/[\w-]+$/);
    assert.ok((await page.locator('section#invoices tr.invoice-row').count()) >= 1, 'the invoices table lists it');
    t.diagnostic(`screenshot ${await shot('subscriptions-paid')}`);
});

step('the invoice page: seller, buyer, lines, tax and total', async (t) => {
    await page.locator(`li.subscription a.invoice-link[href="${invoiceHref}"]`).click();
    await page.waitForURL((u) => u.pathname === invoiceHref);
    // textContent: headings are upper-cased by the style sheet only.
    const text = oneLine(await page.locator('article#invoice').textContent());
    t.diagnostic(`invoice: ${text.slice(0, 400)}`);
    assert.match(oneLine(await page.locator('h1').innerText()), /^Invoice NIMBUS-\d{6}$/);
    for (const shown of ['Seller', 'Buyer', `${PRODUCT.name} ${PRODUCT.tier}`, PRODUCT.price, 'Subtotal', 'Tax', 'Total']) {
        assert.ok(text.includes(shown), `the invoice shows ${shown}`);
    }
    assert.match(oneLine(await page.locator('#invoice-total').innerText()), /^\d+\.\d\d USD$/);
    assert.equal(await page.locator('a[href$="/download"]').getAttribute('href'), `${invoiceHref}/download`);
    t.diagnostic(`screenshot ${await shot('invoice')}`);
});

// axe-core injected into each page, in a context of the same session that bypasses the
// store's CSP (which rightly refuses injected script).
step('accessibility: axe-core finds no serious or critical violations on the commerce pages', async (t) => {
    const ctx = await browser.newContext({ bypassCSP: true, storageState: await page.context().storageState() });
    try {
        const p = await ctx.newPage();
        const problems = [];
        for (const path of ['/checkout?product=nimbus/nimbus-db&tier=enterprise', '/subscriptions', invoiceHref, '/billing']) {
            await p.goto(`${BASE}${path}`);
            await p.addScriptTag({ path: join(HERE, 'node_modules/axe-core/axe.min.js') });
            const violations = await p.evaluate(async () => (await window.axe.run(document, { resultTypes: ['violations'] })).violations
                .map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length })));
            for (const v of violations) t.diagnostic(`${path}: ${v.impact} ${v.id} (${v.nodes})`);
            problems.push(...violations.filter((v) => ['serious', 'critical'].includes(v.impact)).map((v) => `${path}: ${v.id}`));
        }
        assert.deepEqual(problems, []);
    } finally {
        await ctx.close();
    }
});

step('the publisher\'s sales page lists the sale, with its refund button', async (t) => {
    assert.ok(SELLER && SELLER_PASSWORD, 'set E2E_SELLER and E2E_SELLER_PASSWORD to an administrator or an owner of nimbus');
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    try {
        const p = await ctx.newPage();
        p.on('pageerror', (e) => pageErrors.push(`${p.url()}: uncaught ${e.message}`));
        await signIn(p, SELLER, SELLER_PASSWORD);
        await p.goto(`${BASE}/publishers/nimbus/sales`);
        const row = p.locator('table.sold-subscriptions tr').filter({ hasText: USER }).filter({ hasText: PRODUCT.tier });
        assert.equal(await row.count(), 1, `the sale to ${USER} is listed`);
        t.diagnostic(`sale: ${oneLine(await row.innerText()).slice(0, 300)}`);
        assert.equal(await row.locator('form.refund button').count(), 1, 'with its refund button');
        assert.ok((await p.locator('table.orders tr').filter({ hasText: PRODUCT.tier }).filter({ hasText: PRODUCT.price }).count()) >= 1, 'and its order');
        await p.screenshot({ path: join(ARTIFACTS, 'sales.png'), fullPage: true });
        t.diagnostic(`screenshot ${join(ARTIFACTS, 'sales.png')}`);
    } finally {
        await ctx.close();
    }
});

step('no JavaScript errors on the way', async () => {
    assert.deepEqual(pageErrors, []);
}, { independent: true });
