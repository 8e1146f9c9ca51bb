// What the browser journeys share: the browser (Debian's headless Chromium through
// playwright-core), steps that skip once an earlier one failed, screenshots, and page
// errors collected for a last check.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const HERE = dirname(fileURLToPath(import.meta.url));
export const BASE = (process.env.E2E_BASE_URL || '').replace(/\/+$/, '');
export const ARTIFACTS = resolve(process.env.E2E_ARTIFACTS || join(HERE, '../../target/test-artifacts/browser/manual'));
const CHROMIUM = process.env.E2E_CHROMIUM || '/usr/bin/chromium';

export const oneLine = (s) => s.replace(/\s+/g, ' ').trim();

/// A journey: its browser, its pages' errors, and steps that depend on each other.
export class Journey {
    constructor(name) {
        this.name = name;
        this.browser = null;
        this.pageErrors = [];
        this.broken = null;
        this.current = null;
    }

    async launch() {
        assert.ok(BASE.startsWith('http://') || BASE.startsWith('https://'), 'set E2E_BASE_URL to the store');
        assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/install-test-deps`);
        mkdirSync(ARTIFACTS, { recursive: true });
        // Chromium refuses to run as root with its sandbox on.
        const args = process.getuid?.() === 0 ? ['--no-sandbox'] : [];
        this.browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args, timeout: 60_000 });
    }

    /// A page of its own (cookies of its own: one signed-in account).
    async page() {
        const context = await this.browser.newContext({ viewport: { width: 1280, height: 900 } });
        context.setDefaultTimeout(15_000);
        context.setDefaultNavigationTimeout(30_000);
        const page = await context.newPage();
        page.on('pageerror', (e) => this.pageErrors.push(`${page.url()}: uncaught ${e.message}`));
        page.on('console', (m) => {
            // A refused form answers 4xx and Chromium logs the status: not a script error.
            if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) this.pageErrors.push(`${page.url()}: ${m.text()}`);
        });
        return page;
    }

    async close() {
        await this.browser?.close().catch(() => {});
    }

    /// A step on `page()`'s result (a function, as pages change hands between steps).
    step(name, page, fn) {
        test(name, { timeout: 120_000 }, async (t) => {
            if (this.broken) {
                t.skip(`not run: the earlier step "${this.broken}" failed`);
                return;
            }
            try {
                await fn(t);
            } catch (e) {
                this.broken = name;
                const p = page();
                t.diagnostic(`page at failure: ${p.url()}`);
                await shot(p, `failure-${this.name}-${name.toLowerCase().replace(/[^a-z0-9]+/g, '-').slice(0, 50)}`).catch(() => {});
                const text = await p.locator('main').innerText({ timeout: 2000 }).catch(() => '');
                if (text) t.diagnostic(`page text: ${oneLine(text).slice(0, 600)}`);
                throw e;
            }
        });
    }
}

export async function shot(page, name) {
    const file = join(ARTIFACTS, `${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    return file;
}

/// Signs `page` in as `name`.
export async function signIn(page, name, password) {
    await page.goto(`${BASE}/signin`);
    const form = page.locator('form#signin');
    await form.locator('input[name="name"]').fill(name);
    await form.locator('input[name="password"]').fill(password);
    await form.locator('button[type="submit"]').click();
    await page.waitForURL((u) => u.pathname === '/');
    assert.ok(oneLine(await page.locator('a#account').innerText()).includes(name));
}

/// Clicks a button that submits a form and waits for the page that answers it.
export async function press(page, button) {
    const loaded = page.waitForEvent('load');
    await button.click();
    await loaded;
}

/// axe-core on each of `paths` (absolute URLs built from `base`), in a context of `browser`
/// of its own (with `storageState`, to be signed in) that bypasses CSP, since the store's
/// policy rightly refuses injected script. Every violation becomes a diagnostic on `t`; the
/// serious and critical ones are returned as "PATH: RULE". With `shots`, each page is
/// screenshot as `${shots}${path}.png` in ARTIFACTS.
export async function axeProblems(browser, t, base, paths, { storageState, shots } = {}) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, bypassCSP: true, storageState });
    try {
        const p = await context.newPage();
        const problems = [];
        for (const path of paths) {
            await p.goto(`${base}${path}`);
            problems.push(...await axeOn(p, t, path));
            if (shots) await p.screenshot({ path: join(ARTIFACTS, `${shots}${path.replace(/[^a-z0-9]+/gi, '-')}.png`), fullPage: true });
        }
        return problems;
    } finally {
        await context.close();
    }
}

/// axe-core on the page `p` shows now (its context must bypass CSP: see axeProblems), for
/// pages that only a form's answer shows. Returns the serious and critical violations as
/// "LABEL: RULE", every violation a diagnostic on `t`.
export async function axeOn(p, t, label) {
    await p.addScriptTag({ path: join(HERE, 'node_modules/axe-core/axe.min.js') });
    const violations = await p.evaluate(async () => (await window.axe.run(document, { resultTypes: ['violations'] })).violations
        .map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help })));
    for (const v of violations) t.diagnostic(`${label}: ${v.impact} ${v.id} (${v.nodes}): ${v.help}`);
    return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${label}: ${v.id}`);
}
