import closeWithGrace from 'close-with-grace'
import { ConfigError, loadConfig, type Config } from './config.js'
import { buildApp } from './app.js'
import { checkEvictionPolicy } from './redis/client.js'

let config: Config
try {
  config = loadConfig()
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : err)
  process.exit(1)
}

const app = await buildApp(config)
const policy = await checkEvictionPolicy(app.ctx.redis)
if (policy) {
  app.log.warn(`REDIS maxmemory-policy is "${policy}": Redis may evict campaign counters under memory pressure, and an evicted counter oversells. Set maxmemory-policy noeviction.`)
}

closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
  if (err) app.log.error({ err }, 'shutting down after error')
  else app.log.info({ signal }, 'shutting down')
  await app.close()
})

try {
  await app.listen({ port: config.PORT, host: config.HOST })
} catch (err) {
  app.log.error({ err }, 'could not listen')
  process.exit(1)
}
