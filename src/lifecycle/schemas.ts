import { Type } from 'typebox'
import { CAMPAIGN_ID_PATTERN } from '../campaigns/schemas.js'

export const ClaimParamsSchema = Type.Object({
  id: Type.String({ pattern: CAMPAIGN_ID_PATTERN, description: 'campaign id (decimal string)' }),
  claimId: Type.String({ pattern: '^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$',
    description: 'the claimId of a 201' }),
}, { additionalProperties: false })

export const CancelBodySchema = Type.Union([
  Type.Object({}, { additionalProperties: false }),
  Type.Null(),
], { description: 'no body needed' })

export const RevokeBodySchema = Type.Union([
  Type.Object({
    reason: Type.Optional(Type.String({ minLength: 1, maxLength: 500, pattern: '^[^\\u0000]*$',
      description: 'stored with the cancellation (claims.cancel_reason)' })),
  }, { additionalProperties: false }),
  Type.Null(),
], { description: 'optional' })

const Base = {
  claimId: Type.String({ format: 'uuid' }),
  campaignId: Type.String(),
  userId: Type.String(),
  sequence: Type.Integer({ minimum: 1 }),
}

export const CancelledClaimSchema = Type.Object({
  ...Base,
  status: Type.Literal('cancelled'),
  cancelledAt: Type.String({ format: 'date-time' }),
})

export const ConfirmedClaimSchema = Type.Object({
  ...Base,
  status: Type.Literal('confirmed'),
  confirmedAt: Type.String({ format: 'date-time' }),
})

export const ArchiveResponseSchema = Type.Object({
  id: Type.String(),
  state: Type.Literal('archived'),
  archivedAt: Type.String({ format: 'date-time' }),
  issued: Type.Integer({ description: 'sequences handed out' }),
  active: Type.Integer({ description: 'claims holding a unit' }),
  released: Type.Integer({ description: 'claims cancelled or expired (their units went back)' }),
  persisted: Type.Integer({ description: 'claims rows' }),
})
