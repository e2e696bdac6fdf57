import { Type } from 'typebox'

const Position = Type.Union([Type.Integer({ minimum: 1 }), Type.Null()],
  { description: 'place in line; null in the pre-queue (until the opening and its draw)' })

const UserStateSchema = Type.Union([Type.Literal('pre_queue'), Type.Literal('waiting'), Type.Literal('admitted'),
  Type.Literal('claimed'), Type.Literal('expired'), Type.Literal('sold_out')])

export const JoinSchema = Type.Object({
  ticket: Type.String({ description: 'random id of this place in line (not the user id); the draw orders by it' }),
  position: Position,
  state: UserStateSchema,
})

export const QueueStateSchema = Type.Object({
  state: Type.Union([Type.Literal('pre_queue'), Type.Literal('open'), Type.Literal('sold_out'),
    Type.Literal('closed')]),
  length: Type.Integer({ description: 'users who joined (the last position handed out)' }),
  servingUpTo: Type.Integer({ description: 'positions up to this one have been admitted' }),
  seedHash: Type.String({ description: 'hex SHA-256 of the draw seed, published from creation on' }),
  seed: Type.Union([Type.String(), Type.Null()], { description: 'the draw seed; null until opensAt' }),
})

export const MyQueueSchema = Type.Object({
  ticket: Type.String(),
  position: Position,
  ahead: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()],
    { description: 'waiting users in front (0 unless waiting; null in the pre-queue)' }),
  state: UserStateSchema,
  admittedUntil: Type.Union([Type.String({ format: 'date-time' }), Type.Null()],
    { description: 'admitted: claim before this' }),
  estimatedWaitSeconds: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()],
    { description: 'waiting: (position - servingUpTo) / admitPerSecond, rounded up (a lower bound: admission ' +
      'also waits for units); admitted: 0; otherwise null' }),
})

export const DrawQuerySchema = Type.Object({
  offset: Type.Optional(Type.String({ pattern: '^(0|[1-9][0-9]{0,8})$', description: 'first ticket (0-based)' })),
  limit: Type.Optional(Type.String({ pattern: '^([1-9][0-9]{0,3}|10000)$', description: '1..10000 (default 10000)' })),
}, { additionalProperties: false })

export const DrawSchema = Type.Object({
  seed: Type.String(),
  tickets: Type.Array(Type.String(), { description: 'pre-queue tickets in drawn order: the ticket at index i ' +
    'has position offset + i + 1' }),
  total: Type.Integer({ description: 'pre-queue tickets in all' }),
  offset: Type.Integer(),
  nextOffset: Type.Union([Type.Integer(), Type.Null()], { description: 'the next page, or null at the end' }),
})

const Percentiles = Type.Object({
  p50: Type.Union([Type.Number(), Type.Null()]), p95: Type.Union([Type.Number(), Type.Null()]),
  p99: Type.Union([Type.Number(), Type.Null()]),
})

export const ReportSchema = Type.Object({
  campaignId: Type.String(),
  stock: Type.Integer(),
  openedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()],
    { description: 'opensAt (the creation time when the campaign had none)' }),
  firstIssuedAfterSeconds: Type.Union([Type.Number(), Type.Null()],
    { description: 'the first 201 (first persisted claim), seconds from the opening' }),
  soldOutAfterSeconds: Type.Union([Type.Number(), Type.Null()],
    { description: 'when no unit was left nor could come back, seconds from the opening; null: not sold out' }),
  answersByStatus: Type.Record(Type.String(), Type.Integer(),
    { description: 'claim answers on this campaign by HTTP status, summed over the instances (flushed each tick)' }),
  joins: Type.Object({ preQueue: Type.Integer(), afterOpening: Type.Integer() }),
  admissions: Type.Integer(),
  expiredAdmissions: Type.Integer(),
  returnedUnits: Type.Object({
    returned: Type.Integer({ description: 'units given back (cancels, revokes, expired holds)' }),
    reoffered: Type.Integer({ description: 'admissions made for returned units (no fresh unit was left for them)' }),
    taken: Type.Integer({ description: 'claims issued beyond the stock\'s first sequences (returned units taken)' }),
  }),
  waitSeconds: Percentiles,
  fairness: Type.Union([Type.Number(), Type.Null()], { description: 'Spearman rank correlation between the ' +
    'published order (positions) and the admission order; 1.0 expected; null with fewer than 2 admissions' }),
})
