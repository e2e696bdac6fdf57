import { Type } from 'typebox'

export const ClaimHeadersSchema = Type.Object({
  'idempotency-key': Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,128}$',
    description: 'repeat within 24 h replays the first answer' })),
})

export const ClaimBodySchema = Type.Union([Type.Object({}, { additionalProperties: false }), Type.Null()],
  { description: 'no body needed' })

export const ClaimSchema = Type.Object({
  claimId: Type.String({ format: 'uuid' }),
  campaignId: Type.String(),
  userId: Type.String(),
  sequence: Type.Integer({ minimum: 1, description: "the user's place in line, 1..stock" }),
})

const ClaimStatusSchema = Type.Union([Type.Literal('pending'), Type.Literal('persisted')])

export const MyClaimsSchema = Type.Object({
  claims: Type.Array(Type.Object({
    claimId: Type.String(),
    sequence: Type.Integer(),
    claimedAt: Type.String({ format: 'date-time' }),
    status: ClaimStatusSchema,
  })),
})
