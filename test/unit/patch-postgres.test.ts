import { spawnSync } from 'node:child_process'
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const run = (...args: string[]) => spawnSync(process.execPath, [SCRIPT, ...args], { encoding: 'utf8' })

const SCRIPT = path.join(ROOT, 'scripts/patch-postgres.mjs')
const DRIVER = path.join(ROOT, 'node_modules/postgres')
const BUILDS = ['src/connection.js', 'cjs/src/connection.js', 'cf/src/connection.js']
const MARKER = 'fcfs-patch: nextWrite without a socket'

const INDEXES = ['src/index.js', 'cjs/src/index.js', 'cf/src/index.js']

t.test('the installed driver carries the fixes in all three builds; patching again changes nothing', async (t) => {
  const before = [...BUILDS, ...INDEXES].map((f) => readFileSync(path.join(DRIVER, f), 'utf8'))
  for (const [i, text] of before.slice(0, 3).entries()) {
    t.ok(text.includes(MARKER), `${BUILDS[i]} patched`)
    t.match(text, /if \(!socket\) \{[^}]*CONNECTION_CLOSED/, `${BUILDS[i]}: a write without a socket rejects`)
    t.equal(text.split('chunk = nextWriteTimer = null').length - 1, 4, `${BUILDS[i]}: teardown forgets the write`)
    t.match(text, 'return fetchArrayTypes().catch(() => {})', `${BUILDS[i]}: a failed types query is caught`)
    t.match(text, /function errored\(err\) \{\n.*\n {4}final && \(final\(err\), final = null\)/,
      `${BUILDS[i]}: a failed connection fails a COPY's pending final()`)
  }
  for (const [i, text] of before.slice(3).entries()) {
    t.match(text, 'reject: (err) => (queries.remove(query), reject(err))', `${INDEXES[i]}: a rejected reserve leaves the queue`)
    t.match(text, 'query.reserve && queries.push(query)', `${INDEXES[i]}: a reserve given to a reconnect stays queued`)
    t.match(text, 'if (lost) return q.reject(lost)', `${INDEXES[i]}: a closed reserved connection fails its holder's queries`)
  }
  const again = run()
  t.equal(again.status, 0, again.stderr)
  t.same([...BUILDS, ...INDEXES].map((f) => readFileSync(path.join(DRIVER, f), 'utf8')), before)
})

t.test('a driver whose code differs is refused, naming the file', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'pg-patch-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(path.join(dir, 'src'))
  writeFileSync(path.join(dir, 'src/connection.js'), 'function nextWrite(fn) { return socket.write(chunk, fn) }\n')
  const res = run(dir)
  t.equal(res.status, 1)
  t.match(res.stderr, /src\/connection\.js: cannot apply "nextWrite without a socket/)
})
