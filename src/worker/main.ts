import closeWithGrace from 'close-with-grace'
import { pino } from 'pino'
import { ConfigError, loadConfig, type Config } from '../config.js'
import { createWorker } from './worker.js'

let config: Config
try {
  config = loadConfig(process.env, 'worker')
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : err)
  process.exit(1)
}

const log = pino({ level: config.LOG_LEVEL, base: { role: 'worker' } })
const worker = createWorker(config, log)

const graceMs = config.WORKER_SHUTDOWN_TIMEOUT_MS + config.WORKER_BLOCK_MS + 5000
closeWithGrace({ delay: graceMs }, async ({ signal, err }) => {
  if (err) log.error({ err }, 'worker shutting down after error')
  else log.info({ signal }, 'worker shutting down')
  await worker.close()
})

try {
  await worker.start()
} catch (err) {
  log.error({ err }, 'worker failed to start')
  await worker.close()
  process.exit(1)
}
// A crashed loop ends the process with an error; a stopped one lets close-with-grace exit 0.
worker.done().catch(async () => {
  await worker.close()
  process.exit(1)
})
