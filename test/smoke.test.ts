import t from 'tap'
import { testEnv, startApp, createCampaign, claim } from './helper.js'

t.test('smoke', async (t) => {
  const { config } = await testEnv(t)
  const { url } = await startApp(t, config)
  const id = await createCampaign(url, { name: 'x', stock: 1 })
  const r = await claim(url, id, 'alice')
  t.equal(r.status, 201)
})
