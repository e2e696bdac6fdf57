/**
 * The live page in a real browser: Debian's chromium, headless, through playwright-core, against a
 * running API and worker. Signs in, picks a campaign, watches a burst sell it out and the worker persist
 * it, and checks the page's numbers against the admin API's. Set LIVE_SCREENSHOT=docs/live.png to
 * refresh the README's screenshot (taken during the burst).
 */
import { existsSync } from 'node:fs'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import { testEnv, startApp, createCampaign, http, ADMIN_TOKEN, ROOT } from './helper.js'
import { claimMany, spawnWorker } from './worker-helper.js'

const CHROMIUM = '/usr/bin/chromium'
const skip = existsSync(CHROMIUM) ? false : `no browser: ${CHROMIUM} is missing (Debian: apt-get install chromium; .ci/run installs it)`

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync']

const field = (page: Page, name: string) => page.locator(`[data-field="${name}"]`).getAttribute('data-value')

async function waitForField(page: Page, name: string, want: number, timeoutMs = 60_000) {
  await page.waitForFunction(([n, v]) => document.querySelector(`[data-field="${n}"]`)?.getAttribute('data-value') === String(v),
    [name, want] as const, { timeout: timeoutMs, polling: 100 })
}

t.test('the live page follows a burst in chromium', { skip }, async (t) => {
  const stock = 800
  const { config, env } = await testEnv(t, { RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_USER_MAX: '0', LIVE_INTERVAL_MS: '500' })
  const { url } = await startApp(t, config)
  const id = await createCampaign(url, { name: 'browser drop', stock })
  await createCampaign(url, { name: 'another campaign', stock: 10 })
  // The worker starts while the browser does (both are slow to start on a busy machine).
  const worker = spawnWorker(t, env, 'browser-w1')
  const workerStarted = worker.waitForLog((l) => l.msg === 'worker started', 120_000)

  const profile = await mkdtemp(path.join(os.tmpdir(), 'fcfs-chromium-'))
  let context: BrowserContext | null = null
  t.teardown(async () => {
    await context?.close()
    await rm(profile, { recursive: true, force: true })
  })
  // A persistent context is how playwright takes a fresh --user-data-dir of our own.
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1100, height: 900 },
  })
  const page = context.pages()[0] ?? await context.newPage()
  const urls: string[] = []
  const problems: string[] = []
  page.on('request', (r) => urls.push(r.url()))
  page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()) })
  page.on('pageerror', (e) => problems.push(e.message))

  await page.goto(`${url}/admin/live`)
  // A wrong token is refused and the page says so.
  await page.fill('#token', 'not-the-admin-token-at-all')
  await page.click('#login-button')
  await page.waitForSelector('#login-error:not([hidden])')
  problems.length = 0 // the 401 above logs a failed resource in the console
  await page.fill('#token', ADMIN_TOKEN)
  await page.click('#login-button')
  await page.waitForSelector('#app:not([hidden])')
  await page.selectOption('#campaign', id)
  await waitForField(page, 'remaining', stock)
  t.equal(await page.textContent('#state'), 'open')

  await workerStarted
  // The burst (1,000 users for 800 coupons) while the page watches.
  const users = Array.from({ length: 1000 }, (_, i) => `user-${i}`)
  const burst = claimMany(url, id, users, 20)
  await page.waitForFunction(() => Number(document.querySelector('[data-field="issued"]')?.getAttribute('data-value')) > 0, null, { timeout: 60_000 })
  // The screenshot once the chart has a few points and half the stock is gone.
  await page.waitForFunction((half) => Number(document.querySelector('#chart')?.getAttribute('data-points')) >= 4
    && Number(document.querySelector('[data-field="issued"]')?.getAttribute('data-value')) >= half, stock / 2, { timeout: 60_000 })
  const shot = process.env.LIVE_SCREENSHOT ? path.resolve(ROOT, process.env.LIVE_SCREENSHOT) : path.join(profile, 'live.png')
  await page.screenshot({ path: shot, fullPage: true })
  t.ok((await stat(shot)).size > 10_000, `screenshot saved during the burst: ${shot}`)
  const counts = await burst
  t.same(counts, { 201: stock, 410: 200 })

  // The page reaches the admin API's numbers: sold out, every claim persisted.
  await waitForField(page, 'remaining', 0)
  await waitForField(page, 'persisted', stock)
  await waitForField(page, 'pending', 0)
  const admin = await http(`${url}/admin/campaigns/${id}`, { admin: true })
  t.match(admin.body, { remaining: 0, persisted: stock, issued: stock })
  t.equal(await field(page, 'issued'), String(admin.body.issued))
  t.equal(await field(page, 'persisted'), String(admin.body.persisted))
  t.equal(await field(page, 'deadLettered'), '0')
  t.equal(await page.textContent('#state'), 'sold out')

  // The chart has points, and the 201 line rose above the baseline during the burst.
  const { points, ys } = await page.evaluate(() => ({
    points: Number(document.querySelector('#chart')!.getAttribute('data-points')),
    ys: document.querySelector('polyline[data-outcome="201"]')!.getAttribute('points')!.trim().split(' ').map((p) => Number(p.split(',')[1])),
  }))
  t.ok(points >= 4, `${points} chart points`)
  t.equal(ys.length, points)
  t.ok(Math.min(...ys) < 200, '201/s was above 0 at some point')

  t.notOk(urls.some((u) => u.includes(ADMIN_TOKEN)), 'the admin token never appears in a URL')
  t.ok(urls.every((u) => u.startsWith(url)), 'nothing is fetched from another origin')
  t.same(problems, [], 'no script errors or CSP violations')
})
