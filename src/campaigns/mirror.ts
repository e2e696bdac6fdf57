import type { Keys } from '../redis/keys.js'
import { settingHold, settingMs } from '../redis/campaign-hash.js'
import type { RedisClient } from '../redis/client.js'
import { queueMirrorArgs, type QueueColumns } from '../queue/settings.js'

export interface CampaignSettings extends QueueColumns {
  id: bigint | string
  name: string
  stock: number
  perUserLimit: number
  opensAt: Date | null
  closesAt: Date | null
  holdSeconds?: number | null
}

/** Writes a campaign's settings into Redis; null when mode is 'update' and the live state is gone. */
export async function mirrorCampaign(redis: RedisClient, keys: Keys, c: CampaignSettings, mode: 'create' | 'update'):
  Promise<{ stock: number; issued: number; returned: number } | null> {
  const [stock, issued, returned] = await redis.fcfsMirror(keys.campaign(c.id), mode, c.name, c.stock, c.perUserLimit,
    settingMs(c.opensAt), settingMs(c.closesAt), settingHold(c.holdSeconds), ...queueMirrorArgs(c))
  if (stock === -1) return null
  return { stock: stock!, issued: issued!, returned: returned ?? 0 }
}
