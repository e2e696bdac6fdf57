import closeWithGrace from 'close-with-grace'
import { loadConfigOrExit } from './config.js'
import { buildApp } from './app.js'
import { assertNoEviction, EvictionPolicyError } from './redis/eviction.js'

const config = loadConfigOrExit('api', 1)

const app = await buildApp(config)
// An evicting (or unknown, unacknowledged) policy loses answered claims: refuse to serve at all.
try {
  const policy = await assertNoEviction(app.redis, config.REDIS_EVICTION_POLICY_ACK)
  if (policy.message !== 'noeviction') app.log.warn({ policies: policy.policies }, policy.message)
} catch (err) {
  if (!(err instanceof EvictionPolicyError)) {
    // Redis unreachable: start anyway; /readyz checks the policy before any traffic is routed here.
    app.log.warn({ err: { message: (err as Error).message } },
      'could not check the Redis eviction policy at start-up; /readyz will')
  } else {
    app.log.fatal({ err: { message: err.message } }, err.message)
    await app.close().catch(() => {})
    process.exit(1)
  }
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
