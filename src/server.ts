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

// First signal: stop accepting, answer 503 SHUTTING_DOWN on open connections, let in-flight requests finish,
// then close Redis and PostgreSQL. A second signal or SHUTDOWN_GRACE_MS elapsing exits at once with code 1.
closeWithGrace({
  delay: config.SHUTDOWN_GRACE_MS,
  logger: { error: (msg: string) => app.log.error(msg) },
}, async ({ signal, err }) => {
  if (err) app.log.error({ err }, 'shutting down after error')
  else app.log.info({ signal, graceMs: config.SHUTDOWN_GRACE_MS }, 'shutting down')
  await app.close()
  app.log.info('closed')
})

try {
  await app.listen({ port: config.PORT, host: config.HOST })
} catch (err) {
  app.log.error({ err }, 'could not listen')
  process.exit(1)
}
