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
  sequence: Type.Integer({ minimum: 1,
    description: 'unique and increasing per campaign: 1..stock until units are returned ' +
      '(cancellations, expired holds), which are issued again under sequences beyond the last one' }),
  status: Type.Optional(Type.Literal('held',
    { description: 'only on campaigns with holdSeconds: confirm before expiresAt' })),
  expiresAt: Type.Optional(Type.String({ format: 'date-time',
    description: 'when an unconfirmed hold expires and its unit goes back' })),
})

const ClaimStatusSchema = Type.Union([Type.Literal('pending'), Type.Literal('persisted')],
  { description: 'persistence: pending (not yet in PostgreSQL) or persisted' })

const ClaimStateSchema = Type.Union([Type.Literal('active'), Type.Literal('held'), Type.Literal('confirmed'),
  Type.Literal('cancelled'), Type.Literal('expired')],
{ description: 'lifecycle: active (a final claim), held / confirmed (holds), ' +
    'cancelled or expired (its unit went back)' })

export const MyClaimsSchema = Type.Object({
  claims: Type.Array(Type.Object({
    claimId: Type.String(),
    sequence: Type.Integer(),
    claimedAt: Type.String({ format: 'date-time' }),
    status: ClaimStatusSchema,
    state: ClaimStateSchema,
    expiresAt: Type.Optional(Type.String({ format: 'date-time', description: 'held: when the hold expires' })),
  })),
})
