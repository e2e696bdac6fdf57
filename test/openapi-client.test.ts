import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import createClient from 'openapi-fetch'
import { testEnv, startApp, http, userToken, ADMIN_TOKEN, ROOT } from './helper.js'
import { API_TYPES_FILE, renderApiTypes } from './api-types.js'
import type { paths } from './fixtures/api-types.js'

t.test('the OpenAPI document is one a generator accepts, and its generated client claims', async (t) => {
  const { config } = await testEnv(t, { METRICS_TOKEN: 'metrics-token-0123456789' })
  const { url } = await startApp(t, config)
  const doc = (await http(`${url}/docs/json`)).body

  t.test('redocly lint (recommended rules): 0 errors', async (t) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fcfs-openapi-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const file = path.join(dir, 'openapi.json')
    writeFileSync(file, JSON.stringify(doc))
    const r = spawnSync(path.join(ROOT, 'node_modules/.bin/redocly'), ['lint', '--extends', 'recommended', '--format', 'json', file], {
      cwd: dir, encoding: 'utf8', env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' }, timeout: 120_000,
    })
    type Problem = { ruleId: string; severity: string; message: string; location: { pointer: string }[] }
    const report = JSON.parse(r.stdout) as { totals: { errors: number; warnings: number }; problems: Problem[] }
    const errors = report.problems.filter((p) => p.severity === 'error').map((p) => `${p.ruleId} at ${p.location[0]?.pointer}: ${p.message}`)
    t.same(errors, [], 'no lint errors')
    t.equal(report.totals.errors, 0)
    t.equal(r.status, 0, 'redocly exits 0')
  })

  t.test('every operation: operationId, summary, security; headers documented', async (t) => {
    t.ok(Array.isArray(doc.servers) && doc.servers.length > 0, 'servers declared')
    const ids = new Set<string>()
    for (const [p, item] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
      for (const [method, op] of Object.entries(item)) {
        const name = `${method.toUpperCase()} ${p}`
        t.match(op.operationId, /^[a-z][A-Za-z]+$/, `${name}: operationId`)
        t.notOk(ids.has(op.operationId), `${name}: operationId ${op.operationId} is unique`)
        ids.add(op.operationId)
        t.ok(typeof op.summary === 'string' && op.summary.length > 0, `${name}: summary`)
        t.ok(Array.isArray(op.security), `${name}: security declared on the route (public routes: [])`)
        for (const [status, res] of Object.entries(op.responses as Record<string, any>)) {
          t.ok(res.headers?.['X-Request-Id'], `${name} ${status}: X-Request-Id documented`)
          if (status === '429' || status === '503') t.ok(res.headers?.['Retry-After'], `${name} ${status}: Retry-After documented`)
        }
      }
    }
    const claimOp = doc.paths['/v1/campaigns/{id}/claims'].post
    for (const s of ['201', '403', '409', '410']) t.ok(claimOp.responses[s].headers['Idempotent-Replayed'], `claim ${s}: Idempotent-Replayed documented`)
    t.same(doc.paths['/v1/campaigns/{id}'].get.security, [], 'the public read needs no credentials')
    t.same(doc.paths['/healthz'].get.security, [])
  })

  t.test('the committed generated types match the served document', async (t) => {
    const fresh = await renderApiTypes(doc)
    t.ok(fresh === readFileSync(API_TYPES_FILE, 'utf8'), 'test/fixtures/api-types.ts is current (else run `npm run api:types` and commit it)')
  })

  t.test('a claim through the generated client', async (t) => {
    const client = createClient<paths>({ baseUrl: url })
    const created = await client.POST('/admin/campaigns', { body: { name: 'typed', stock: 1 }, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
    t.equal(created.response.status, 201)
    const id = created.data!.id
    const won = await client.POST('/v1/campaigns/{id}/claims', { params: { path: { id } }, headers: { authorization: `Bearer ${userToken('typed-a')}` } })
    t.equal(won.response.status, 201)
    t.equal(won.data?.sequence, 1, 'typed success body')
    t.equal(won.data?.userId, 'typed-a')
    const lost = await client.POST('/v1/campaigns/{id}/claims', { params: { path: { id } }, headers: { authorization: `Bearer ${userToken('typed-b')}` } })
    t.equal(lost.response.status, 410)
    t.equal(lost.error?.code, 'SOLD_OUT', 'typed error body')
    const mine = await client.GET('/v1/campaigns/{id}/claims/me', { params: { path: { id } }, headers: { authorization: `Bearer ${userToken('typed-a')}` } })
    t.equal(mine.data?.claims[0]?.sequence, 1)
  })
})
