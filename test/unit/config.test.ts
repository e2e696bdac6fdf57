/** Config parsed and validated once: defaults, and a bad value refused with the variable's name. */
import t from 'tap'
import { loadConfig, ConfigError } from '../../src/config.js'

const base = { JWT_SECRET: 'x'.repeat(32) }

t.test('defaults', async (t) => {
  const c = loadConfig(base)
  t.match(c, { PORT: 3000, HOST: '127.0.0.1', REDIS_URL: 'redis://127.0.0.1:6379',
    DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/fcfs', KEY_PREFIX: 'fcfs' })
  t.equal(c.ADMIN_TOKEN, undefined)
})

t.test('a bad value names the variable', async (t) => {
  for (const [name, value] of [['PORT', 'abc'], ['PORT', '70000'], ['REDIS_URL', 'http://x'],
    ['DATABASE_URL', 'mysql://x'],
    ['KEY_PREFIX', 'has space'], ['ADMIN_TOKEN', 'short'], ['RATE_LIMIT_USER_MAX', '-1'], ['TRUST_PROXY', 'yes please'], ['LOG_LEVEL', 'loud']]) {
    let err: unknown
    try { loadConfig({ ...base, [name!]: value }) } catch (e) { err = e }
    t.ok(err instanceof ConfigError && err.message.includes(name!), `${name}=${value} is refused, naming ${name}`)
  }
  t.throws(() => loadConfig({}), /JWT_SECRET/, 'users must be identified by a JWT secret or a trusted header')
  t.doesNotThrow(() => loadConfig({ TRUSTED_USER_HEADER: 'x-user-id' }))
  t.doesNotThrow(() => loadConfig({}, 'script'), 'scripts need no JWT secret')
})

t.test('WORKER_COUNT has a maximum, so one batch stays a sane transaction', async (t) => {
  t.equal(loadConfig({ ...base, WORKER_COUNT: '10000' }, 'worker').WORKER_COUNT, 10_000)
  t.throws(() => loadConfig({ ...base, WORKER_COUNT: '10001' }, 'worker'), /WORKER_COUNT/)
  t.throws(() => loadConfig({ ...base, WORKER_COUNT: '200000' }, 'worker'), /WORKER_COUNT/)
})
