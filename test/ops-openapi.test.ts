import t from 'tap'
import { validate, compileErrors } from '@readme/openapi-parser'
import { Ajv2020 } from 'ajv/dist/2020.js'
import { ErrorCode } from '../src/errors.js'
import { testEnv, startApp, http, createCampaign, claim, userToken } from './helper.js'

/**
 * Every METHOD path the app serves, from Fastify's own route table (printRoutes draws a tree: a line's
 * segment continues its parent's path). HEAD/OPTIONS and the /docs UI's own routes are left out.
 */
function servedRoutes(printed: string): string[] {
  const out: string[] = []
  const stack: string[] = []
  for (const line of printed.split('\n')) {
    const m = /^(.*?)[├└]── (\S+)(?: \(([A-Z, ]+)\))?$/.exec(line)
    if (!m) continue
    const depth = [...m[1]!].length / 4
    stack.length = depth
    const url = (stack[depth - 1] ?? '') + m[2]!
    stack[depth] = url
    if (!m[3] || url.startsWith('/docs')) continue
    for (const method of m[3].split(',').map((x) => x.trim())) {
      if (method !== 'HEAD' && method !== 'OPTIONS') out.push(`${method} ${url.replace(/:(\w+)/g, '{$1}')}`)
    }
  }
  return out.sort()
}

t.test('OpenAPI document: valid, every route, every status and error code', async (t) => {
  const { config } = await testEnv(t, { METRICS_TOKEN: 'metrics-token-0123456789' })
  const { app, url } = await startApp(t, config)
  const res = await http(`${url}/docs/json`)
  t.equal(res.status, 200)
  const doc = res.body
  t.equal(doc.openapi, '3.1.0')

  const result = await validate(structuredClone(doc))
  t.ok(result.valid, result.valid ? 'valid OpenAPI 3.1' : compileErrors(result))

  const ui = await fetch(`${url}/docs`, { redirect: 'follow' })
  t.equal(ui.status, 200, 'swagger UI served at /docs')
  t.match(ui.headers.get('content-type'), /text\/html/)

  const served = servedRoutes(app.printRoutes({ commonPrefix: false }))
  const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>)
    .flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`)).sort()
  t.ok(served.length >= 9, `found the route table (${served.length} routes)`)
  t.same(documented, served, 'the document lists exactly the routes the app serves')

  const seenCodes = new Set<string>()
  for (const [p, ops] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
    for (const [method, op] of Object.entries(ops)) {
      const statuses = Object.keys(op.responses)
      t.ok(statuses.some((s) => /^2\d\d$/.test(s)), `${method} ${p}: a success response`)
      t.ok(statuses.includes('500') && statuses.includes('503'),
        `${method} ${p}: 500 and 503 (SHUTTING_DOWN) documented`)
      for (const status of statuses.filter((s) => !s.startsWith('2'))) {
        const schema = op.responses[status].content?.['application/json']?.schema
        const codes: string[] = schema?.properties?.code?.enum ?? []
        t.ok(codes.length > 0, `${method} ${p} ${status}: error codes listed`)
        t.same(schema?.required, ['statusCode', 'code', 'error', 'message'])
        for (const c of codes) {
          t.ok(Object.values(ErrorCode).includes(c as ErrorCode), `${c} is an ErrorCode`)
          seenCodes.add(c)
        }
      }
      if (!p.startsWith('/healthz') && !p.startsWith('/readyz')) t.ok(op.tags?.length, `${method} ${p} is tagged`)
    }
  }
  for (const c of Object.values(ErrorCode)) {
    if (c === ErrorCode.NOT_FOUND) t.match(doc.info.description, /404 NOT_FOUND/,
      'unknown-route 404 described once, in info')
    else if (c === ErrorCode.METHOD_NOT_ALLOWED) t.match(doc.info.description, /405 METHOD_NOT_ALLOWED/,
      'wrong-method 405 described once, in info')
    else if (c === ErrorCode.URI_TOO_LONG || c === ErrorCode.HEADERS_TOO_LARGE || c === ErrorCode.REQUEST_TIMEOUT) {
      t.match(doc.info.description, new RegExp(`\\d{3} ${c}`), `${c} (answered before any route) described in info`)
    } else t.ok(seenCodes.has(c), `${c} is documented on a route`)
  }

  const claimOp = doc.paths['/v1/campaigns/{id}/claims'].post
  t.same(Object.keys(claimOp.responses).sort(),
    ['201', '400', '401', '403', '404', '409', '410', '413', '415', '429', '500', '503'])
  t.same(claimOp.responses['403'].content['application/json'].schema.properties.code.enum, ['NOT_OPEN', 'CLOSED',
    'NOT_ADMITTED'])
  t.same(claimOp.responses['503'].content['application/json'].schema.properties.code.enum,
    ['CAMPAIGN_UNAVAILABLE', 'RECOVERING', 'SHUTTING_DOWN', 'BACKEND_UNAVAILABLE', 'NOT_DURABLE'])
  t.equal(claimOp.requestBody.required, false, 'the claim needs no body')
  t.same(claimOp.security, [{ userJwt: [] }])
  t.same(doc.paths['/admin/campaigns'].post.security, [{ adminToken: [] }])
  t.ok(doc.paths['/metrics'].get.responses['200'].content['text/plain'], '/metrics is text/plain')

  // The document describes what the server actually answers.
  const ajv = new Ajv2020({ strict: false, validateFormats: false })
  const check = (path: string, method: string, status: number, body: unknown) => {
    const schema = doc.paths[path][method].responses[String(status)].content['application/json'].schema
    const ok = ajv.validate(schema, body)
    t.ok(ok, `${method.toUpperCase()} ${path} ${status} matches the document ${ok ? '' : ajv.errorsText()}`)
  }
  const id = await createCampaign(url, { name: 'doc', stock: 1 })
  const won = await claim(url, id, 'a')
  check('/v1/campaigns/{id}/claims', 'post', won.status, won.body)
  const lost = await claim(url, id, 'b')
  check('/v1/campaigns/{id}/claims', 'post', lost.status, lost.body)
  const mine = await http(`${url}/v1/campaigns/${id}/claims/me`, { token: userToken('a') })
  check('/v1/campaigns/{id}/claims/me', 'get', mine.status, mine.body)
  const missing = await http(`${url}/v1/campaigns/999999`)
  check('/v1/campaigns/{id}', 'get', missing.status, missing.body)
  const unauth = await http(`${url}/admin/campaigns/${id}`)
  check('/admin/campaigns/{id}', 'get', unauth.status, unauth.body)
  const ready = await http(`${url}/readyz`)
  check('/readyz', 'get', ready.status, ready.body)
})
