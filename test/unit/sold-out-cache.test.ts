/** The sold-out cache's rules, on a fake clock (its cross-process behaviour: test/sold-out-cache.test.ts). */
import t from 'tap'
import { createSoldOutCache } from '../../src/claims/sold-out-cache.js'

t.test('the cache never remembers an answer an event overtook, nor anything while unsubscribed', async (t) => {
  let now = 1_000
  const c = createSoldOutCache(500, () => now)
  c.remember('1', c.mark())
  t.notOk(c.has('1'), 'not live: nothing remembered')
  c.setLive(true)
  const m = c.mark()
  c.forget('1') // the stock-added event arrives while the SOLD_OUT reply is still on its way
  c.remember('1', m)
  t.notOk(c.has('1'), 'the overtaken answer is dropped')
  c.remember('1', c.mark())
  t.ok(c.has('1'))
  t.notOk(c.has('2'), 'per campaign')
  now += 500
  t.notOk(c.has('1'), 'expires')
  c.remember('1', c.mark())
  c.remember('2', c.mark())
  c.forget()
  t.notOk(c.has('1') || c.has('2'), 'an event naming no campaign forgets all')
  c.remember('1', c.mark())
  c.setLive(false)
  t.notOk(c.has('1'), 'losing the subscription forgets all')
  c.setLive(true)
  t.notOk(c.has('1'))
  const off = createSoldOutCache(0, () => now)
  off.setLive(true)
  off.remember('1', off.mark())
  t.notOk(off.has('1'), 'SOLD_OUT_CACHE_MS=0 turns it off')
})
