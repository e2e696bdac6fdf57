import type { Keys } from '../redis/keys.js'
import type { CampaignSettings } from '../campaigns/mirror.js'
import type { RedisClient } from '../redis/client.js'
import { settingHold, settingMs } from '../redis/campaign-hash.js'
import { queueMirrorArgs } from '../queue/settings.js'

/**
 * Writes the database's settings into the campaign hash, raising stock and issued (never lowering).
 * With create, a missing hash is made whole in one step; without, a missing hash is left alone (null).
 */
export async function writeLiveState(redis: RedisClient, keys: Keys, c: CampaignSettings, minIssued: number,
  create: boolean, returned = 0, stamp = true):
  Promise<{ created: boolean; stock: number; issued: number } | null> {
  const reply = await redis.fcfsLiveState(keys.campaign(c.id), create ? '1' : '0', c.name, c.stock, c.perUserLimit,
    settingMs(c.opensAt), settingMs(c.closesAt), minIssued, settingHold(c.holdSeconds), returned, ...queueMirrorArgs(c),
    stamp ? '1' : '0')
  if (reply[0] === -1) return null
  return { created: reply[0] === 1, stock: reply[1]!, issued: reply[2]! }
}
