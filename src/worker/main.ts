import { parseCli } from '../cli.js'

parseCli({
  command: 'npm run worker --',
  summary: 'Moves issued claims from the Redis streams into PostgreSQL (one consumer of the WORKER_GROUP group; ' +
    'run one or more). Stops cleanly on SIGTERM/SIGINT. Configured by environment variables only.',
  options: {},
  exitCodes: [[0, 'stopped by SIGTERM/SIGINT after finishing the batches in hand'], [1, 'could not start ' +
    '(configuration, Redis unreachable) or crashed'], [2, 'bad arguments']],
  env: ['REDIS_URL', 'DATABASE_URL', 'KEY_PREFIX', 'STREAM_PARTITIONS', 'HOST', 'LOG_LEVEL', 'WORKER_NAME',
    'WORKER_GROUP', 'WORKER_COUNT', 'WORKER_BLOCK_MS',
    'WORKER_INFLIGHT', 'RECLAIM_IDLE_MS', 'RECLAIM_INTERVAL_MS', 'MAX_DELIVERIES', 'WORKER_METRICS_PORT',
    'WORKER_SHUTDOWN_TIMEOUT_MS'],
})

// Loaded after the arguments are parsed, so --help and a bad option cost no more than node itself.
const [{ default: closeWithGrace }, { pino }, { loadConfigOrExit, prettyLogs }, { createWorker }] = await Promise.all([
  import('close-with-grace'), import('pino'), import('../config.js'), import('./worker.js'),
])

const config = loadConfigOrExit('worker', 1)

// Pretty lines are written synchronously (not through a transport thread): the last line before an exit
// (a taken metrics port) must not be lost.
const pretty = prettyLogs(config) ? (await import('pino-pretty')).default({ sync: true }) : undefined
const log = pino({ level: config.LOG_LEVEL, base: { role: 'worker' } }, pretty)
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
  // A taken metrics port says what to do in one line; anything else gets its stack.
  if ((err as Error).name === 'MetricsPortInUse') log.error((err as Error).message)
  else log.error({ err }, 'worker failed to start')
  await worker.close()
  process.exit(1)
}
// A crashed loop ends the process with an error; a stopped one lets close-with-grace exit 0.
worker.done().catch(async () => {
  await worker.close()
  process.exit(1)
})
