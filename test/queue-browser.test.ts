/**
 * The waiting page in a real browser (Debian's chromium, headless, playwright-core), as the live page is
 * tested: a user joins before the opening (pre-queue), is admitted at the opening, claims with the page's
 * button; a second user behind them sees sold out. Set QUEUE_SCREENSHOT=docs/queue.png to refresh the
 * screenshot in docs/queue.md (taken at "your turn").
 */
import { existsSync } from 'node:fs'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import { testEnv, startApp, createCampaign, http, userToken, ROOT } from './helper.js'

const CHROMIUM = '/usr/bin/chromium'
const skip = existsSync(CHROMIUM) ? false : `no browser: ${CHROMIUM} is missing (Debian: apt-get install chromium)`
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync']

t.test('the waiting page: pre-queue, your turn, claim, sold out', { skip }, async (t) => {
  const { config } = await testEnv(t, { RATE_LIMIT_USER_MAX: '0', QUEUE_TICK_MS: '50' })
  const { url } = await startApp(t, config)
  const profile = await mkdtemp(path.join(os.tmpdir(), 'fcfs-chromium-'))
  let context: BrowserContext | null = null
  t.teardown(async () => {
    await context?.close()
    await rm(profile, { recursive: true, force: true })
  })
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 900, height: 900 },
  })
  const urls: string[] = []
  const problems: string[] = []
  const watch = (page: Page) => {
    page.on('request', (r) => urls.push(r.url()))
    page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()) })
    page.on('pageerror', (e) => problems.push(e.message))
  }
  const page = context.pages()[0] ?? await context.newPage()
  watch(page)
  // Created once the browser runs (slow to start on a busy machine): the page joins before the opening.
  const opensAt = Date.now() + 8000
  const id = await createCampaign(url, { name: 'browser queue', stock: 1, opensAt: new Date(opensAt).toISOString(),
    queue: { order: 'fifo', admitPerSecond: 10, admitSeconds: 120 } })
  const page0 = await http(`${url}/queue/${id}`)
  t.equal(page0.status, 200)
  t.match(page0.headers.get('content-security-policy'), /default-src 'none'; script-src 'self'/)
  const token = userToken('first-in-line')
  await page.goto(`${url}/queue/${id}`)
  await page.fill('#token', token)
  await page.click('#join-button')
  await page.waitForSelector('#place:not([hidden])')
  t.ok(Date.now() < opensAt, 'joined before the opening')
  t.equal(await page.textContent('#position'), 'drawn at the opening', 'pre-queue: no position yet')
  await page.waitForFunction(() => document.querySelector('#room')?.textContent === 'pre queue', null, { timeout: 10_000 })
  t.match(await page.textContent('#message'), /pre-queue/)
  t.match(await page.textContent('#seed-hash'), /^[0-9a-f]{64}$/, 'the seed hash is shown before the opening')
  t.match(await page.textContent('#seed'), /not yet/)

  // A second user joins behind, through the API.
  t.equal((await http(`${url}/v1/campaigns/${id}/queue`, { method: 'POST', token: userToken('second') })).status, 201)

  // The opening: the page learns the position, then "your turn".
  await page.waitForSelector('#turn:not([hidden])', { timeout: 30_000 })
  t.equal(await page.textContent('#position'), '1')
  t.match(await page.textContent('#seed'), /^[0-9a-f]{64}$/, 'the seed is revealed at the opening')
  const shot = process.env.QUEUE_SCREENSHOT ? path.resolve(ROOT, process.env.QUEUE_SCREENSHOT)
    : path.join(profile, 'queue.png')
  await page.screenshot({ path: shot, fullPage: true })
  t.ok((await stat(shot)).size > 10_000, `screenshot saved: ${shot}`)

  await page.click('#claim')
  await page.waitForSelector('#result:not([hidden])')
  t.equal(await page.textContent('#result'), 'Claimed! Your number is 1.')
  await page.waitForFunction(() => /claimed your unit/.test(document.querySelector('#message')?.textContent ?? ''),
    null, { timeout: 10_000 })

  // The second user's page: sold out (no unit left, no hold open).
  const second = await context.newPage()
  watch(second)
  await second.goto(`${url}/queue/${id}`)
  await second.fill('#token', userToken('second'))
  await second.click('#join-button')
  await second.waitForFunction(() => /Sold out/.test(document.querySelector('#message')?.textContent ?? ''), null,
    { timeout: 15_000 })
  t.equal(await second.textContent('#position'), '2')
  // The room's state comes from the public queue state, cached up to a second per instance: it follows.
  await second.waitForFunction(() => document.querySelector('#room')?.textContent === 'sold out', null,
    { timeout: 10_000 })
  t.equal(await second.textContent('#room'), 'sold out')
  t.ok(await second.isHidden('#turn'), 'no claim button')

  t.notOk(urls.some((u) => u.includes(token)), 'the token never appears in a URL')
  t.ok(urls.every((u) => u.startsWith(url)), 'nothing is fetched from another origin')
  t.same(problems, [], 'no script errors or CSP violations')
})
