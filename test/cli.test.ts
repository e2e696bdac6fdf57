import t from 'tap'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { ROOT } from './helper.js'
import { runToEnd } from './process.js'

const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
// Every CLI, as npm runs it: `node dist/...` with no build step in front.
const CLIS = ['dev', 'token', 'migrate', 'worker', 'reconcile', 'retry-failed', 'bench', 'bench:drain']
// Nothing listens there: a CLI that touched a service while printing its help would fail or hang.
const NO_SERVICES = { REDIS_URL: 'redis://127.0.0.1:1', DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none', JWT_SECRET: '', ADMIN_TOKEN: '' }

/** fn over items, at most `n` at a time (each CLI start loads its whole module graph: 2 cores, shared). */
async function pool<T>(items: T[], n: number, fn: (x: T) => Promise<void>): Promise<void> {
  const queue = [...items]
  await Promise.all(Array.from({ length: n },
    async () => { for (let x = queue.shift(); x !== undefined; x = queue.shift()) await fn(x) }))
}

/** The command line of an npm script, e.g. ['dist/scripts/reconcile.js'] for `node dist/scripts/reconcile.js`. */
function entry(name: string): string {
  const m = /^node (dist\/\S+\.js)$/.exec(pkg.scripts[name] ?? '')
  if (!m) throw new Error(`npm script ${name} is not "node dist/....js": ${pkg.scripts[name]}`)
  return m[1]!
}

t.test('no npm script builds before it runs (the build happens once, at install)', async (t) => {
  const pre = Object.keys(pkg.scripts).filter((s) => (s.startsWith('pre') && s.slice(3) in pkg.scripts) || (s.startsWith('post') && s.slice(4) in pkg.scripts))
  t.same(pre, [], 'no pre*/post* hooks')
  t.match(pkg.scripts.prepare, /npm run build/, 'npm ci builds through prepare')
  for (const name of CLIS) t.ok(entry(name), `${name} runs node on dist/`)
})

t.test('-h/--help: usage, every option and the exit codes on stdout, exit 0, no service touched', async (t) => {
  await pool(CLIS, 3, async (name) => {
    const long = await runToEnd(process.execPath, [entry(name), '--help'], NO_SERVICES)
    const short = await runToEnd(process.execPath, [entry(name), '-h'], NO_SERVICES)
    t.equal(long.code, 0, `${name} --help exits 0 ${long.stderr}`)
    t.equal(long.stderr, '', `${name} --help: nothing on stderr`)
    t.match(long.stdout, /^usage: npm run /, `${name} --help: usage line`)
    t.match(long.stdout, /\noptions:\n[\s\S]*-h, --help/, `${name} --help: options listed`)
    t.match(long.stdout, /\nexit codes:\n {2}0 [\s\S]*\n {2}2 /, `${name} --help: exit codes listed`)
    t.equal(short.code, 0, `${name} -h exits 0`)
    t.equal(short.stdout, long.stdout, `${name} -h prints the same help`)
  })
})

t.test('an unknown option exits 2 with a message on stderr and nothing on stdout', async (t) => {
  await pool(CLIS, 3, async (name) => {
    const r = await runToEnd(process.execPath, [entry(name), '--no-such-option'], NO_SERVICES)
    t.equal(r.code, 2, `${name}: exit 2`)
    t.equal(r.stdout, '', `${name}: stdout empty`)
    t.match(r.stderr, /no-such-option/, `${name}: stderr names the option`)
    t.match(r.stderr, /--help/, `${name}: stderr points at --help`)
  })
  const limit = await runToEnd(process.execPath, [entry('retry-failed'), '--limit', 'abc'], NO_SERVICES)
  t.equal(limit.code, 2, 'retry-failed --limit abc is refused (it used to run the job)')
  t.match(limit.stderr, /--limit must be an integer/)
  const missing = await runToEnd(process.execPath, [entry('token')], NO_SERVICES)
  t.equal(missing.code, 2, 'token without a user id')
  const extra = await runToEnd(process.execPath, [entry('worker'), 'stray'], NO_SERVICES)
  t.equal(extra.code, 2, 'a stray positional argument')
})
