// A product reaching the store through moderation, in a real browser (playwright-core in
// Debian's headless Chromium), as two people at once: a publisher and a moderator.
//
//   publisher: a profile and a listing (a draft) -> submitting is refused with every gap
//   (the publisher agreement, an image for the tier) -> the agreement accepted, an image
//   pushed (the registry API, as a client does) -> submitted;
//   moderator: the queue lists it -> the console shows the listing, its image and the
//   thread -> "Request changes" refused without a message, then sent with one;
//   publisher: sees the message, edits, submits again; moderator approves; publisher
//   publishes: the product page is public;
//   a change to the live listing: saved, customers still see the live one; submitted; the
//   console shows what changed; approved: customers see it. No JavaScript errors.
//
// Run by tests/e2e/browser.sh (it creates both accounts). By hand, against a store you
// started (authentication enforced):
//
//   slipway admin create-user PUB --email PUB@example.com --password-stdin --data-dir DIR
//   slipway admin create-user MOD --email MOD@example.com --password-stdin --moderator --data-dir DIR
//   E2E_BASE_URL=http://127.0.0.1:PORT E2E_PUBLISHER=PUB E2E_PUBLISHER_PASSWORD=PW \
//     E2E_MODERATOR=MOD E2E_MODERATOR_PASSWORD=PW node --test tests/browser/moderation.test.mjs
//
// Screenshots: moderation-*.png in E2E_ARTIFACTS.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

import { ARTIFACTS, BASE, Journey, oneLine, press, shot, signIn } from './harness.mjs';

const PUBLISHER = process.env.E2E_PUBLISHER || '';
const PUBLISHER_PASSWORD = process.env.E2E_PUBLISHER_PASSWORD || '';
const MODERATOR = process.env.E2E_MODERATOR || '';
const MODERATOR_PASSWORD = process.env.E2E_MODERATOR_PASSWORD || '';
// The publisher's organization: given by tests/e2e/browser.sh, which pulls from it after.
const ORG = process.env.E2E_MODERATION_ORG || `lamp-${randomBytes(3).toString('hex')}`;
const EDITOR = `/publish/${ORG}/products/lantern`;
const PRODUCT = `/products/${ORG}/lantern`;

const journey = new Journey('moderation');
let publisher;
let moderator;
let current; // the page a failure is reported on

before(async () => {
    assert.ok(PUBLISHER && PUBLISHER_PASSWORD && MODERATOR && MODERATOR_PASSWORD, 'set E2E_PUBLISHER(_PASSWORD) and E2E_MODERATOR(_PASSWORD)');
    await journey.launch();
    publisher = await journey.page();
    moderator = await journey.page();
    current = publisher;
});

after(() => journey.close());

const step = (name, fn) => journey.step(name, () => current, fn);
const text = async (page) => oneLine(await page.locator('main').innerText());

/// Pushes a one-layer image (an empty tar, gzipped) as `PUBLISHER`, through the token
/// endpoint and the registry API as any client does.
async function pushImage(repository, tag) {
    const basic = Buffer.from(`${PUBLISHER}:${PUBLISHER_PASSWORD}`).toString('base64');
    const scope = `repository:${repository}:push,pull`;
    const tokenAnswer = await fetch(`${BASE}/auth/token?service=slipway&scope=${encodeURIComponent(scope)}`, { headers: { authorization: `Basic ${basic}` } });
    assert.equal(tokenAnswer.status, 200, await tokenAnswer.clone().text());
    const auth = { authorization: `Bearer ${(await tokenAnswer.json()).token}` };
    const sha256 = (bytes) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    async function blob(bytes) {
        const start = await fetch(`${BASE}/v2/${repository}/blobs/uploads/`, { method: 'POST', headers: auth });
        assert.equal(start.status, 202, await start.clone().text());
        const location = new URL(start.headers.get('location'), BASE);
        location.searchParams.set('digest', sha256(bytes));
        const put = await fetch(location, { method: 'PUT', headers: { ...auth, 'content-type': 'application/octet-stream' }, body: bytes });
        assert.equal(put.status, 201, await put.clone().text());
        return { digest: sha256(bytes), size: bytes.length };
    }
    const tar = Buffer.alloc(1024);
    const layer = await blob(gzipSync(tar));
    const config = await blob(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(tar)] } })));
    const manifest = JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer }],
    });
    const put = await fetch(`${BASE}/v2/${repository}/manifests/${tag}`, {
        method: 'PUT',
        headers: { ...auth, 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
        body: manifest,
    });
    assert.equal(put.status, 201, await put.clone().text());
}

/// Presses the review panel's button for `to` (`listing:submitted`, `revision:approved`,
/// `message`) on `page`, with `message`; the page that answers.
async function review(page, to, message = '') {
    const form = page.locator('form.review');
    await form.locator('textarea[name="message"]').fill(message);
    await press(page, form.locator(`button[value="${to}"]`));
}

async function status(page) {
    return oneLine(await page.locator('#review-status').innerText());
}

/// What an anonymous visitor sees at `path`: the status and the page's text.
async function anonymously(path) {
    const answer = await fetch(`${BASE}${path}`);
    return [answer.status, await answer.text()];
}

step('publisher: signed in, a profile with a logo and a listing saved as a draft', async () => {
    await signIn(publisher, PUBLISHER, PUBLISHER_PASSWORD);
    await publisher.goto(`${BASE}/publishers/nimbus`);
    const logoUrl = await publisher.locator('header img').first().getAttribute('src');
    const logoFile = join(ARTIFACTS, 'moderation-logo.png');
    writeFileSync(logoFile, Buffer.from(await (await publisher.request.get(new URL(logoUrl, BASE).href)).body()));
    await publisher.goto(`${BASE}/publish/profile`);
    const profile = publisher.locator('form#profile');
    await profile.locator('[name="org"]').fill(ORG);
    await profile.locator('[name="display_name"]').fill('Lamplight');
    await profile.locator('[name="legal_name"]').fill('Lamplight Ltd.');
    await profile.locator('[name="website"]').fill('https://lamplight.example');
    await profile.locator('[name="phone"]').fill('+44 20 5550 0100');
    await profile.locator('[name="email"]').fill(`legal@${ORG}.example`);
    await profile.locator('[name="logo"]').setInputFiles(logoFile);
    await press(publisher, profile.locator('button[type="submit"]'));
    await publisher.goto(`${BASE}/publish/${ORG}/products/new`);
    const form = publisher.locator('form#listing');
    await form.locator('[name="name"]').fill('Lantern');
    await form.locator('[name="short_description"]').fill('Lights the way.');
    await form.locator('[name="category"]').selectOption('networking');
    await form.locator('[name="runs_on"]').selectOption('community');
    await form.locator('[name="tier_0_name"]').fill('Community');
    await form.locator('[name="tier_0_access"]').selectOption('public');
    await form.locator('[name="tier_0_repository"]').fill(`${ORG}/lantern`);
    await form.locator('[name="tier_0_tags"]').fill('1.*');
    await press(publisher, form.locator('button[value="save"]'));
    assert.equal(new URL(publisher.url()).pathname, EDITOR);
    assert.equal(await status(publisher), 'Draft');
    assert.equal((await anonymously(PRODUCT))[0], 404, 'a draft is not public');
});

step('publisher: submitting is refused with every gap; the agreement accepted, an image pushed, submitted', async (t) => {
    await review(publisher, 'listing:submitted');
    const refused = await text(publisher);
    t.diagnostic(refused.slice(0, 300));
    assert.ok(refused.includes('publisher agreement') && refused.includes(`push an image to ${ORG}/lantern with one of the tags 1.*`), refused.slice(0, 400));
    await publisher.goto(`${BASE}/publish/${ORG}/agreement`);
    assert.ok((await text(publisher)).includes('72 hours'));
    await press(publisher, publisher.locator('form button[type="submit"]').last());
    assert.ok((await publisher.locator('#agreement-accepted').innerText()).includes('accepted version 1'));
    await pushImage(`${ORG}/lantern`, '1.0');
    await publisher.goto(`${BASE}${EDITOR}`);
    await review(publisher, 'listing:submitted', 'First release.');
    assert.equal(await status(publisher), 'Submitted');
    t.diagnostic(`screenshot ${await shot(publisher, 'moderation-editor-submitted')}`);
});

step('moderator: the queue lists it; the console shows the listing, its image and the thread', async (t) => {
    current = moderator;
    await signIn(moderator, MODERATOR, MODERATOR_PASSWORD);
    await moderator.goto(`${BASE}/moderation`);
    const row = moderator.locator('#queue tr', { hasText: 'Lantern' });
    assert.equal(await row.count(), 1, await text(moderator));
    assert.ok(oneLine(await row.innerText()).includes('A new listing'));
    t.diagnostic(`screenshot ${await shot(moderator, 'moderation-queue')}`);
    await row.locator('a').click();
    await moderator.waitForURL((u) => u.pathname === `/moderation/${ORG}/lantern`);
    const shown = await text(moderator);
    for (const expected of ['Lights the way.', 'Docker Community', `${ORG}/lantern`, '1.*', '1.0', 'First release.']) {
        assert.ok(shown.includes(expected), `${expected} in ${shown.slice(0, 600)}`);
    }
    t.diagnostic(`screenshot ${await shot(moderator, 'moderation-console')}`);
});

step('moderator: changes requested (a message is required); the publisher reads it', async () => {
    await review(moderator, 'listing:changes_requested');
    assert.ok((await text(moderator)).includes('say why'), 'refused without a message');
    await moderator.goto(`${BASE}/moderation/${ORG}/lantern`);
    await review(moderator, 'listing:changes_requested', 'Add install instructions, please.');
    assert.equal(await status(moderator), 'Changes requested');
    current = publisher;
    await publisher.goto(`${BASE}${EDITOR}`);
    assert.equal(await status(publisher), 'Changes requested');
    assert.ok((await publisher.locator('ol.thread').innerText()).includes('Add install instructions, please.'));
});

step('publisher edits and resubmits; the moderator approves; the publisher publishes', async (t) => {
    const form = publisher.locator('form#listing');
    await form.locator('[name="install_instructions"]').fill('docker run lantern');
    await press(publisher, form.locator('button[value="save"]'));
    await review(publisher, 'listing:submitted', 'Added them.');
    assert.equal(await status(publisher), 'Submitted');
    current = moderator;
    await moderator.goto(`${BASE}/moderation/${ORG}/lantern`);
    assert.ok((await text(moderator)).includes('docker run lantern'));
    await review(moderator, 'listing:approved');
    assert.equal(await status(moderator), 'Approved');
    assert.equal((await anonymously(PRODUCT))[0], 404, 'approved is not yet published');
    current = publisher;
    await publisher.goto(`${BASE}${EDITOR}`);
    await review(publisher, 'listing:published');
    assert.equal(await status(publisher), 'Published');
    const [code, page] = await anonymously(PRODUCT);
    assert.equal(code, 200);
    assert.ok(page.includes('Lights the way.'));
    t.diagnostic(`screenshot ${await shot(publisher, 'moderation-editor-published')}`);
});

step('a change to the live listing waits for approval, then goes live', async (t) => {
    const form = publisher.locator('form#listing');
    await form.locator('[name="short_description"]').fill('Lights the way, brighter.');
    await press(publisher, form.locator('button[value="save"]'));
    assert.equal(oneLine(await publisher.locator('#revision-status').innerText()), 'Draft');
    assert.ok(!(await anonymously(PRODUCT))[1].includes('brighter'), 'customers see the live listing');
    await review(publisher, 'revision:submitted');
    assert.equal(oneLine(await publisher.locator('#revision-status').innerText()), 'Submitted');
    current = moderator;
    await moderator.goto(`${BASE}/moderation`);
    const row = moderator.locator('#queue tr', { hasText: 'Lantern' });
    assert.ok(oneLine(await row.innerText()).includes('A change to the live listing'));
    await row.locator('a').click();
    await moderator.waitForURL((u) => u.pathname === `/moderation/${ORG}/lantern`);
    assert.ok(oneLine(await moderator.locator('#changed').innerText()).includes('short_description'));
    t.diagnostic(`screenshot ${await shot(moderator, 'moderation-console-revision')}`);
    await review(moderator, 'revision:approved');
    assert.equal(await moderator.locator('#revision-status').count(), 0, 'nothing pending');
    assert.ok((await anonymously(PRODUCT))[1].includes('Lights the way, brighter.'), 'the change is live');
});

step('publisher: the security pages show the repository, its tags by platform, and the image\'s layers', async (t) => {
    current = publisher;
    await publisher.goto(`${BASE}/publish/${ORG}/security`);
    await publisher.locator('#repositories a', { hasText: `${ORG}/lantern` }).click();
    await publisher.waitForURL((u) => u.searchParams.get('repository') === `${ORG}/lantern`);
    const row = publisher.locator('#tags tbody tr', { hasText: '1.0' }).first();
    assert.ok(oneLine(await row.innerText()).includes('linux/amd64'), oneLine(await row.innerText()));
    t.diagnostic(`screenshot ${await shot(publisher, 'security-tags')}`);
    await row.locator('a').click();
    await publisher.waitForURL((u) => u.pathname === `/publish/${ORG}/security/image`);
    assert.ok((await publisher.locator('#history .layer').count()) >= 1, 'the image history lists its layers');
    assert.ok(await publisher.locator('#export-sarif').isVisible());
    t.diagnostic(`screenshot ${await shot(publisher, 'security-image')}`);
    assert.equal((await anonymously(`/publish/${ORG}/security`))[0], 200, 'signed out: the sign-in page');
    assert.ok(!(await anonymously(`/publish/${ORG}/security`))[1].includes(`${ORG}/lantern`), 'nothing shown signed out');
});

test('no JavaScript errors on the moderation pages', (t) => {
    for (const e of journey.pageErrors) t.diagnostic(e);
    assert.deepEqual(journey.pageErrors, []);
});
