import t from 'tap'
import { spawnSync } from 'node:child_process'
import { testEnv } from './helper.js'
import { runToEnd } from './process.js'

t.test('npm run -s reconcile -- --json prints only JSON on stdout', async (t) => {
  const { env } = await testEnv(t)
  const r = await runToEnd('npm', ['run', '-s', 'reconcile', '--', '--json'], env)
  t.equal(r.code, 0, r.stderr)
  const parsed = JSON.parse(r.stdout)
  t.equal(parsed.exitCode, 0)
  t.same(parsed.campaigns, [])
  const jq = spawnSync('jq', ['-e', '.ok'], { input: r.stdout, encoding: 'utf8' })
  t.equal(jq.status, 0, `jq parses it: ${jq.stderr}`)
  t.equal(jq.stdout.trim(), 'true')
})

t.test('npm run token signs a token the API accepts', async (t) => {
  const secret = 'cli-test-secret-0123456789abcdef'
  const r = await runToEnd('npm', ['run', '-s', 'token', '--', 'alice', '--ttl', '120'], { JWT_SECRET: secret, JWT_ISSUER: 'shop', JWT_AUDIENCE: 'fcfs' })
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/, 'just the token and a newline')
  const { createVerifier } = await import('fast-jwt')
  const claims = createVerifier({ key: secret, algorithms: ['HS256'], allowedIss: 'shop', allowedAud: 'fcfs' })(r.stdout.trim())
  t.equal(claims.sub, 'alice')
  t.ok(claims.exp - claims.iat === 120, 'exp = iat + --ttl')
  const none = await runToEnd(process.execPath, ['dist/scripts/token.js', 'alice'], { JWT_SECRET: '' })
  t.equal(none.code, 1, 'no JWT_SECRET: exit 1')
  t.match(none.stderr, /JWT_SECRET/)
})
