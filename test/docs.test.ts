/**
 * Docs that a test can read against the code stay true: the claim's steps in docs/api.md against
 * claim.lua's header and body, the key layout against src/redis/keys.ts, the admin fields and states
 * against the response schemas.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { ROOT } from './helper.js'
import { createKeys } from '../src/redis/keys.js'
import { AdminCampaignSchema, PublicCampaignSchema } from '../src/campaigns/schemas.js'

const api = readFileSync(path.join(ROOT, 'docs/api.md'), 'utf8')
const claimLua = readFileSync(path.join(ROOT, 'src/claims/claim.lua'), 'utf8')
const section = (doc: string, heading: string) => {
  const from = doc.indexOf(`${heading}\n`)
  if (from < 0) throw new Error(`no section ${heading}`)
  const next = doc.indexOf('\n#', from + heading.length)
  return doc.slice(from, next < 0 ? undefined : next)
}

t.test('"How a claim works" lists the steps of claim.lua\'s header, in order, and the body runs them in it', async (t) => {
  const header = /Steps, in this order[^\n]*\n((?:\s+\d+\.[^\n]*\n)+)/.exec(claimLua)
  t.ok(header, 'claim.lua has a Steps list')
  const fromHeader = [...header![1]!.matchAll(/(\d+)\. ([a-z-]+(?: [a-z-]+)*)/g)].map((m) => m[2]!.trim())
  const fromDoc = [...section(api, '## How a claim works').matchAll(/^\d+\. \*\*([^*]+)\*\*/gm)].map((m) => m[1]!)
  t.ok(fromHeader.length >= 5)
  t.same(fromDoc, fromHeader, 'the same steps in the same order')
  // The body runs them in that order: each step's mark is found after the previous one's.
  const marks = ['{-1}', '{-6,', '{0, stored}', '{-3,', 'expire_due(', 'rec_find(record, claimId)', '{-4,', '{-5,',
    '{1, seq']
  t.equal(marks.length, fromHeader.length, 'one mark per step')
  const body = claimLua.slice(claimLua.indexOf(']]'))
  let pos = 0
  for (const [i, mark] of marks.entries()) {
    const at = body.indexOf(mark, pos)
    t.ok(at >= 0, `step ${i + 1} (${fromHeader[i]}): ${mark} after the previous step`)
    pos = Math.max(pos, at)
  }
})

t.test('the key layout table is the one src/redis/keys.ts builds', async (t) => {
  const keys = createKeys('PFX', 4)
  const id = '7'
  const tag = keys.tagOf(id)
  t.match(tag, /^\{PFX:p3:\d+\}$/, 'the hash tag is {<prefix>:p<n>:<salt>}')
  const pattern = (k: string) => k.replace(tag, '{<prefix>:p<n>:<salt>}').replaceAll('PFX', '<prefix>')
    .replace(`:campaign:${id}`, ':campaign:<id>').replace(':4:USER', ':<len>:<user>').replace(':IDEM', ':<key>')
  const built = [keys.campaign(id), keys.users(id), keys.holds(id), keys.marks(id), keys.idempotency(id, 'USER', 'IDEM'),
    keys.userRate(id, 'USER'), keys.recoveryLease(id), keys.streamOf(id), keys.events()].map(pattern)
  const table = [...section(api, '### Redis key layout').matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]!)
  t.same(table.sort(), built.sort(), 'every key built is documented, and nothing else')
})

t.test('docs/api.md lists every admin field and every state', async (t) => {
  const admin = section(api, '### Admin (`Authorization: Bearer <ADMIN_TOKEN>`)')
  const row = admin.split('\n').find((l) => l.startsWith('| `GET /admin/campaigns/:id`'))!
  for (const field of Object.keys(AdminCampaignSchema.properties)) t.match(row, new RegExp(`\\b${field}\\b`), field)
  const states = (PublicCampaignSchema.properties.state.anyOf as { const: string }[]).map((s) => s.const)
  t.ok(states.includes('archived'))
  for (const s of states) {
    t.match(admin, `\`${s}\``, `admin section: state ${s}`)
    t.match(section(api, '### Users (`Authorization: Bearer <JWT>` with the user id in `sub`, or the trusted header)'),
      `\`${s}\``, `public read: state ${s}`)
  }
})
