import type { Config } from './config.js'
import type { DbHandle } from './db/client.js'
import type { Keys } from './redis/keys.js'
import type { CampaignsRepository } from './campaigns/repository.js'
import type { AppError } from './errors.js'
import type { Missing } from './campaigns/lookup.js'
import type { ApiMetrics } from './ops/metrics.js'
import type { SoldOutCache } from './claims/sold-out-cache.js'
import type { RedisClient } from './redis/client.js'

/** What route plugins share: built once by buildApp, closed by it. */
export interface AppContext {
  config: Config
  redis: RedisClient
  db: DbHandle
  keys: Keys
  campaigns: CampaignsRepository
  /** 404, 403 CLOSED (archived) or 503 for a campaign whose live state Redis does not have. */
  errorForMissing: (id: string) => Promise<AppError>
  /** Why Redis has no live state for a campaign (archived campaigns answer from PostgreSQL). */
  whyMissing: (id: string) => Promise<Missing>
  /** Prometheus series of the API (src/ops/metrics.ts). */
  metrics: ApiMetrics
  /** Campaigns this instance knows are sold out (cleared by campaign-changed events). */
  soldOut: SoldOutCache
}
