import { Type } from 'typebox'
import { QueueOptionSchema, QueueSettingsSchema } from '../queue/settings.js'

/** A campaign id: a positive decimal of at most 18 digits (fits a bigint). The API, worker and reconcile share it. */
export const CAMPAIGN_ID_PATTERN = '^[1-9][0-9]{0,17}$'
export const CAMPAIGN_ID = new RegExp(CAMPAIGN_ID_PATTERN)

export const CampaignIdParamsSchema = Type.Object({
  id: Type.String({ pattern: CAMPAIGN_ID_PATTERN, description: 'campaign id (decimal string)' }),
}, { additionalProperties: false })

/**
 * The most stock a campaign can hold, at creation and after any addition: well inside PostgreSQL's integer
 * (campaigns.stock, claims.sequence), so a sum of additions is refused by name instead of overflowing.
 */
export const STOCK_MAX = 100_000_000

const DateTimeOrNull = Type.Union([Type.String({ format: 'date-time' }), Type.Null()])

export const CreateCampaignBodySchema = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 200 }),
  stock: Type.Integer({ minimum: 1, maximum: STOCK_MAX }),
  perUserLimit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 1 })),
  opensAt: Type.Optional(Type.String({ format: 'date-time' })),
  closesAt: Type.Optional(Type.String({ format: 'date-time' })),
  holdSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400,
    description: 'set: a 201 is a hold that expires unless confirmed within this many seconds; ' +
      'absent: claims are final' })),
  queue: Type.Optional(QueueOptionSchema),
}, { additionalProperties: false })

export const CampaignSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  stock: Type.Integer(),
  perUserLimit: Type.Integer(),
  opensAt: DateTimeOrNull,
  closesAt: DateTimeOrNull,
  holdSeconds: Type.Union([Type.Integer(), Type.Null()]),
  queue: QueueSettingsSchema,
})

export const CampaignListQuerySchema = Type.Object({
  // A string: query values are not coerced (ajv coerceTypes is off).
  limit: Type.Optional(Type.String({ pattern: '^(1000|[1-9][0-9]{0,2})$', description: '1..1000' })),
}, { additionalProperties: false })

export const CampaignListSchema = Type.Object({ campaigns: Type.Array(CampaignSchema) })

export const AdminCampaignSchema = Type.Object({
  ...CampaignSchema.properties,
  issued: Type.Integer({
    description: 'sequences handed out (Redis); returned units are issued again under new sequences' }),
  returned: Type.Integer({ description: 'units given back by cancellations and expired holds' }),
  remaining: Type.Integer({ description: 'stock - (issued - returned)' }),
  persisted: Type.Integer({ description: 'claims rows in PostgreSQL (written by the worker)' }),
  pending: Type.Integer({ description: 'issued but not yet persisted' }),
  state: Type.Union([Type.Literal('scheduled'), Type.Literal('open'), Type.Literal('sold_out'), Type.Literal('closed'),
    Type.Literal('archived')]),
  archivedAt: DateTimeOrNull,
})

export const AddStockBodySchema = Type.Object({
  add: Type.Integer({ minimum: 1, maximum: STOCK_MAX,
    description: `refused with 409 STOCK_LIMIT when the total would pass ${STOCK_MAX}` }),
}, { additionalProperties: false })

export const AddStockResponseSchema = Type.Object({ stock: Type.Integer(), remaining: Type.Integer() })

const CampaignStateSchema = Type.Union([Type.Literal('scheduled'), Type.Literal('open'),
  Type.Literal('sold_out'), Type.Literal('closed'), Type.Literal('archived')])

export const PublicCampaignSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  remaining: Type.Integer(),
  opensAt: DateTimeOrNull,
  closesAt: DateTimeOrNull,
  state: CampaignStateSchema,
})
