/**
 * Deployment files, checked without a Docker engine: the compose file against the Compose Specification's
 * JSON schema (and `docker-compose config` where Debian's docker-compose is installed), the Dockerfile's
 * essentials through a real Dockerfile parser.
 */
import t from 'tap'
import { readFileSync, existsSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import os from 'node:os'
import path from 'node:path'
import { Ajv2019 } from 'ajv/dist/2019.js'
import { parse as parseYaml } from 'yaml'
import { DockerfileParser, Copy, type Instruction } from 'dockerfile-ast'
import { ConfigSchema } from '../src/config.js'
import { ROOT } from './helper.js'

const read = (f: string) => readFileSync(path.join(ROOT, f), 'utf8')

/** KEY=VALUE lines of an env file (comments and blank lines skipped). */
function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line.trim())
    if (m) out[m[1]!] = m[2]!
  }
  return out
}

/** Compose variable substitution: $$, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}. */
function interpolate(text: string, env: Record<string, string>): string {
  return text.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}/g, (whole, name?: string, op?: string, arg?: string) => {
    if (whole === '$$') return '$'
    const v = env[name!]
    const unset = v === undefined || (op?.startsWith(':') && v === '')
    if (!op) return v ?? ''
    if (op.endsWith('-')) return unset ? arg! : v!
    if (unset) throw new Error(`${name}: ${arg}`)
    return v!
  })
}

/**
 * The spec still carries draft-04 `"id": "#/properties/..."` labels, which 2019-09 does not define (ajv
 * rejects them). They validate nothing; a property *named* id has an object value and is kept.
 */
function stripDraft4Ids(node: unknown): void {
  if (Array.isArray(node)) return node.forEach(stripDraft4Ids)
  if (typeof node !== 'object' || node === null) return
  const o = node as Record<string, unknown>
  if (typeof o.id === 'string') delete o.id
  Object.values(o).forEach(stripDraft4Ids)
}

const composeText = read('docker-compose.yml')
const envExample = parseEnvFile(read('.env.example'))
const SECRETS = { POSTGRES_PASSWORD: 'pw-0123456789', ADMIN_TOKEN: 'admin-0123456789abcdef',
  JWT_SECRET: 'jwt-0123456789abcdef', GRAFANA_ADMIN_PASSWORD: 'grafana-0123456789' }

t.test('compose file validates against the Compose Specification schema', async (t) => {
  const schema = JSON.parse(read('test/fixtures/compose-spec.schema.json'))
  // The spec names the draft as http://...#; ajv registers the 2019-09 meta-schema under its https id.
  schema.$schema = 'https://json-schema.org/draft/2019-09/schema'
  stripDraft4Ids(schema)
  const ajv = new Ajv2019({ strict: false, allErrors: true })
  // The spec's custom formats, as the reference implementation checks them.
  ajv.addFormat('duration', /^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$/)
  ajv.addFormat('ports', /^((\[?[0-9a-fA-F.:]+\]?:)?([0-9]+(-[0-9]+)?)?:)?[0-9]+(-[0-9]+)?(\/(tcp|udp|sctp))?$/)
  ajv.addFormat('expose', /^[0-9]+(-[0-9]+)?(\/(tcp|udp|sctp))?$/)
  ajv.addFormat('subnet_ip_address', true)
  const validate = ajv.compile(schema)

  const doc = parseYaml(interpolate(composeText, { ...envExample, ...SECRETS }), { merge: true })
  const ok = validate(doc)
  t.ok(ok, 'valid: ' + ajv.errorsText(validate.errors))
  // The validator is not vacuous: a misspelt key or a wrong type is caught.
  t.notOk(validate({ ...doc, services: { ...doc.services, api: { ...doc.services.api, replicaz: 2 } } }),
    'unknown service key rejected')
  t.notOk(validate({ ...doc, services: { ...doc.services,
    redis: { ...doc.services.redis, healthcheck: { interval: 'soon' } } } }), 'bad duration rejected')

  // The schema accepts much; these are the properties the deployment relies on.
  const s = doc.services
  t.same(Object.keys(s).sort(), ['api', 'grafana', 'migrate', 'postgres', 'prometheus', 'redis', 'worker'])
  const redisCmd: string[] = s.redis.command
  const flag = (name: string) => redisCmd[redisCmd.indexOf(name) + 1]
  t.equal(flag('--appendonly'), 'yes')
  t.equal(flag('--appendfsync'), 'everysec')
  t.equal(flag('--maxmemory-policy'), 'noeviction')
  t.match(composeText, /`always`/, 'the compose file explains what appendfsync always costs and buys')
  t.match(s.redis.image, /^redis:7\.\d+\.\d+/)
  t.match(s.postgres.image, /^postgres:16\.\d+/)
  t.ok(s.postgres.volumes.some((v: string) => v.endsWith(':/var/lib/postgresql/data')), 'postgres data on a volume')
  t.ok(s.postgres.healthcheck?.test, 'postgres healthcheck')
  t.ok(s.redis.healthcheck?.test, 'redis healthcheck')
  t.equal(s.migrate.restart, 'no', 'migrate is one-shot')
  t.same(s.migrate.command, ['node', 'dist/scripts/migrate.js'])
  for (const name of ['api', 'worker']) {
    t.equal(s[name].deploy.replicas, 2, `${name}: two replicas`)
    t.same(s[name].depends_on, {
      redis: { condition: 'service_healthy' },
      postgres: { condition: 'service_healthy' },
      migrate: { condition: 'service_completed_successfully' },
    }, `${name} waits for healthy stores and a finished migration`)
    t.equal(s[name].image, s.migrate.image, `${name} runs the same image as migrate`)
    // A typo in a variable name would silently fall back to the default: every key must be a real setting.
    const known = new Set([...Object.keys(ConfigSchema.properties), 'HEALTHCHECK_PORT'])
    for (const key of Object.keys(s[name].environment)) t.ok(known.has(key),
      `${name}: ${key} is a setting src/config.ts reads`)
  }
  // Prometheus reads the repo's config and rules; Grafana its provisioning and dashboards (checked in
  // test/ops-prometheus.test.ts). Both listen on the host's loopback only.
  t.ok(s.prometheus.volumes.includes('./deploy/prometheus:/etc/prometheus:ro'))
  t.ok(s.prometheus.command.includes('--config.file=/etc/prometheus/prometheus.yml'))
  t.ok(s.grafana.volumes.includes('./deploy/grafana/provisioning:/etc/grafana/provisioning:ro'))
  t.ok(s.grafana.volumes.includes('./deploy/grafana/dashboards:/etc/grafana/dashboards:ro'))
  for (const name of ['prometheus', 'grafana']) {
    t.ok(s[name].ports.every((p: string) => p.startsWith('127.0.0.1:')), `${name} on loopback`)
  }
  t.same(s.api.command, ['node', 'dist/src/server.js'])
  t.same(s.worker.command, ['node', 'dist/src/worker/main.js'])
  // src/worker/main.ts exits hard WORKER_SHUTDOWN_TIMEOUT_MS + WORKER_BLOCK_MS + 5 s after SIGTERM; Docker's
  // SIGKILL at stop_grace_period must come later, or a slow drain is cut short mid-batch.
  const seconds = (d: string) => Number(/^(\d+)s$/.exec(d)?.[1] ?? NaN)
  const workerExitS = (Number(s.worker.environment.WORKER_SHUTDOWN_TIMEOUT_MS) +
    Number(s.worker.environment.WORKER_BLOCK_MS) + 5000) / 1000
  t.equal(workerExitS, 16, 'the worker exits hard after 16 s with the defaults')
  t.ok(seconds(s.worker.stop_grace_period) > workerExitS,
    `worker stop_grace_period ${s.worker.stop_grace_period} is longer than its own hard exit (${workerExitS} s)`)
  t.ok(seconds(s.api.stop_grace_period) > Number(s.api.environment.SHUTDOWN_GRACE_MS) / 1000,
    'api stop_grace_period is longer than SHUTDOWN_GRACE_MS')
})

t.test('every variable the compose file uses is in .env.example, and the secrets have no default', async (t) => {
  const used = new Set([...composeText.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]!))
  for (const v of used) t.ok(v in envExample, `${v} is in .env.example`)
  for (const v of Object.keys(envExample)) t.ok(used.has(v), `.env.example's ${v} is used by docker-compose.yml`)
  for (const v of Object.keys(SECRETS)) {
    t.equal(envExample[v], '', `${v} is empty in .env.example`)
    t.throws(() => interpolate(composeText, { ...envExample, ...SECRETS, [v]: '' }), new RegExp(v),
      `compose refuses to start without ${v}`)
  }
})

t.test('every ConfigSchema variable is settable from .env.example, or fixed by the compose file', async (t) => {
  const doc = parseYaml(interpolate(composeText, { ...envExample, ...SECRETS }), { merge: true })
  // Set by the compose file itself (container addresses and ports; DATABASE_URL from the POSTGRES_* values).
  const fixed = ['NODE_ENV', 'PORT', 'HOST', 'REDIS_URL', 'DATABASE_URL', 'METRICS_PORT', 'WORKER_METRICS_PORT']
  // Per process: WORKER_NAME must differ between replicas (default <hostname>-<pid>); METRICS_HOST defaults to HOST.
  const perProcess = ['WORKER_NAME', 'METRICS_HOST']
  for (const name of Object.keys(ConfigSchema.properties)) {
    if (perProcess.includes(name)) continue
    if (fixed.includes(name)) {
      t.ok(['api', 'worker'].some((svc) => doc.services[svc].environment[name] !== undefined),
        `${name} is set by docker-compose.yml`)
    } else t.ok(name in envExample, `${name} is in .env.example`)
  }
})

const dockerCompose = spawnSync('docker-compose', ['version', '--short'], { encoding: 'utf8' })
t.test('docker-compose config accepts the file', { skip: dockerCompose.status === 0 ? false : 'docker-compose is not installed (Debian: apt-get install docker-compose)' }, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fcfs-compose-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const envFile = path.join(dir, '.env')
  writeFileSync(envFile, Object.entries({ ...envExample, ...SECRETS }).map(([k, v]) => `${k}=${v}`).join('\n') + '\n')
  const r = spawnSync('docker-compose', ['--env-file', envFile, '-f', path.join(ROOT, 'docker-compose.yml'), 'config',
    '--quiet'], { cwd: ROOT, encoding: 'utf8' })
  t.equal(r.status, 0, r.stderr)
  const bad = spawnSync('docker-compose', ['--env-file', path.join(ROOT, '.env.example'), '-f',
    path.join(ROOT, 'docker-compose.yml'), 'config', '--quiet'], { cwd: ROOT, encoding: 'utf8' })
  t.not(bad.status, 0, 'refused with the secrets unset')
  t.match(bad.stderr, /POSTGRES_PASSWORD|ADMIN_TOKEN|JWT_SECRET/)
})

t.test('Dockerfile essentials', async (t) => {
  const engineMajor = /^>=(\d+)$/.exec(JSON.parse(read('package.json')).engines.node)![1]!
  t.ok(Number(process.versions.node.split('.')[0]) >= Number(engineMajor),
    `the suite runs on the Node that engines names (>=${engineMajor}; .ci/run installs it)`)
  const df = DockerfileParser.parse(read('Dockerfile'))
  const args = new Map<string, string>()
  for (const a of df.getInitialARGs()) for (const p of a.getProperties()) args.set(p.getName(), p.getValue() ?? '')
  const resolve = (s: string) => s.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, n: string) => args.get(n) ?? '')

  const froms = df.getFROMs()
  t.ok(froms.length >= 2, 'multi-stage')
  for (const f of froms) {
    const image = resolve(f.getArgumentsContent()!.split(/\s+/)[0]!)
    // The Node major that package.json's engines names and CI tests, at an exact version (digest optional).
    t.match(image, new RegExp(`^node:${engineMajor}\\.\\d+\\.\\d+-[a-z]+-slim(@sha256:[0-9a-f]{64})?$`),
      `stage ${f.getBuildStage()}: pinned base image (${image})`)
  }

  // Instructions of the final (runtime) stage.
  const all = df.getInstructions()
  const lastFrom = froms[froms.length - 1]!
  const runtime = all.filter((i) => i.getRange().start.line > lastFrom.getRange().start.line)
  const line = (i: { getRange(): { start: { line: number } } }) => i.getRange().start.line
  const build = all.filter((i) => line(i) > line(froms[0]!) && line(i) < line(lastFrom))
  const args0 = (i: Instruction) => i.getArgumentsContent() ?? ''
  const of = (list: Instruction[], kw: string) => list.filter((i) => i.getKeyword() === kw)

  t.ok(of(build, 'RUN').some((i) => /npm run build/.test(args0(i))), 'build stage compiles')
  const users = of(runtime, 'USER')
  t.equal(users.length, 1, 'runtime stage sets USER')
  t.notMatch(args0(users[0]!), /^(root|0)(:|$)/, 'USER is not root')
  const cmd = of(runtime, 'CMD')[0]!
  t.ok(users[0]!.getRange().start.line < cmd.getRange().start.line, 'USER precedes CMD')

  const runs = of(runtime, 'RUN').map(args0)
  t.ok(runs.some((r) => /npm ci\b.*--omit=dev/.test(r)), 'runtime installs with npm ci --omit=dev')
  t.notOk(runs.some((r) => /npm (i|install)\b/.test(r)), 'no npm install in the runtime stage')
  for (const c of of(runtime, 'COPY') as Copy[]) {
    t.notMatch(args0(c), /node_modules/, `runtime COPY ${args0(c)} brings no node_modules (dev dependencies) from the build`)
    const from = c.getFromFlag()?.getValue()
    if (from) t.same(args0(c).split(/\s+/).slice(0, -1), ['/app/dist'], 'only dist/ comes from the build stage')
    else for (const src of args0(c).split(/\s+/).slice(0, -1)) t.ok(existsSync(path.join(ROOT, src)),
      `COPY source ${src} exists`)
  }
  t.match(of(runtime, 'ENV').map(args0).join(' '), /npm_config_ignore_scripts=true/,
    'pre-scripts (build) skipped in the runtime image')
  t.match(of(runtime, 'ENV').map(args0).join(' '), /NODE_ENV=production/)

  const hc = of(runtime, 'HEALTHCHECK')
  t.equal(hc.length, 1, 'HEALTHCHECK')
  t.match(args0(hc[0]!), /CMD \["node"/, 'health check runs node (no curl in the slim image)')
  t.match(args0(hc[0]!), /\/healthz/)
  t.same(JSON.parse(args0(cmd)), ['node', 'dist/src/server.js'],
    'node is the process that gets SIGTERM (npm would not pass it on)')

  const ignore = read('.dockerignore').split('\n').map((l) => l.trim())
  for (const p of ['node_modules', '.git', '.env', 'dist']) t.ok(ignore.includes(p), `.dockerignore excludes ${p}`)
  t.notOk(ignore.includes('drizzle') || ignore.includes('src'), 'the build context keeps src/ and drizzle/')
})
