/** The server's start-up refusal as a real process; the config rules themselves: test/unit/config.test.ts. */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { ROOT } from './helper.js'
import { entryArgs } from './process.js'

t.test('the server refuses to start on bad config, naming the variable', async (t) => {
  const r = spawnSync(process.execPath, [...entryArgs('src/server')], {
    cwd: ROOT, env: { ...process.env, JWT_SECRET: 'x'.repeat(32),
      PORT: 'not-a-port' }, encoding: 'utf8', timeout: 30_000,
  })
  t.equal(r.status, 1)
  t.match(r.stderr, /PORT/)
  t.notMatch(r.stderr, /at .*:\d+:\d+/, 'a message, not a stack trace')
})
