import type { FastifyBaseLogger } from 'fastify'
import type { Keys } from '../redis/keys.js'
import { createRedis, type RedisClient } from '../redis/client.js'
import type { Config } from '../config.js'

/**
 * Campaign-changed events on the pub/sub channel keys.events(): every API instance drops what it cached
 * about the campaign (its listener: the claims' sold-out cache). Publish after the change is in Redis,
 * never before.
 */
export interface CampaignEvent { type: 'stock-added' | 'rebuilt' | 'returned' | 'archived'; campaignId: string }

export async function publishCampaignChanged(redis: RedisClient, keys: Keys, event: CampaignEvent): Promise<void> {
  await redis.publish(keys.events(), JSON.stringify(event))
}

/** The campaign id an event names, or undefined for "forget everything" (unknown or malformed event). */
function eventCampaignId(message: string): string | undefined {
  try {
    const e = JSON.parse(message) as Partial<CampaignEvent>
    return typeof e.campaignId === 'string' ? e.campaignId : undefined
  } catch {
    return undefined
  }
}

/**
 * What a subscriber does with the events (the claims' sold-out cache is one): forget one campaign, or all
 * of them when an event names none; and know whether events can be trusted to arrive right now.
 */
export interface CampaignEventListener {
  forget(campaignId?: string): void
  /** True once subscribed; false when the connection drops (events may be lost meanwhile). */
  setLive(live: boolean): void
}

/**
 * Subscribes a dedicated connection (a subscribed connection can run nothing else) and keeps the cache
 * live only while the subscription is: on every (re)connect it subscribes again before going live.
 */
export function subscribeCampaignEvents(config: Config, keys: Keys, cache: CampaignEventListener,
  log: FastifyBaseLogger): { close: () => Promise<void> } {
  // Named after the prefix so an operator (or a test) can tell deployments' subscribers apart.
  const sub = createRedis(config, {
    connectionName: `fcfs-api-events:${keys.prefix}`, maxRetriesPerRequest: null, autoPipelining: false, log,
    commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS,
  })
  const channel = keys.events()
  let closing = false
  sub.on('message', (ch: string, message: string) => {
    if (ch === channel) cache.forget(eventCampaignId(message))
  })
  sub.on('ready', () => {
    sub.subscribe(channel).then(() => { if (!closing) cache.setLive(true) }, (err: Error) => {
      if (!closing) log.warn({ err }, 'campaign events: subscribe failed; sold-out cache stays off')
    })
  })
  sub.on('close', () => cache.setLive(false))
  return {
    async close() {
      closing = true
      cache.setLive(false)
      await sub.quit().catch(() => sub.disconnect())
    },
  }
}
