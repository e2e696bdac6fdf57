/**
 * The bench's SVG chart, written next to its --json file: the burst's timeline (answers per second by
 * status, and the stock left) and every scenario's throughput as bars. Plain SVG strings: two charts
 * do not need a plotting library, and the file opens in any browser.
 */
import type { Summary } from './report.js'

const W = 900
const PANEL_H = 300
const M = { left: 70, right: 70, top: 40, bottom: 50 }
const COLORS: Record<string, string> = { 201: '#2a9d4b', 409: '#e9a23b', 410: '#d1495b', other: '#7b6fd0', stock: '#1f5fa8' }

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
const num = (v: number) => (v >= 1000 ? `${(v / 1000).toFixed(v >= 10_000 ? 0 : 1)}k` : v.toFixed(v < 10 && v % 1 ? 1 : 0))

/** A round axis maximum and its ticks. */
function ticks(max: number, n = 5): number[] {
  if (max <= 0) return [0, 1]
  const raw = max / n
  const mag = 10 ** Math.floor(Math.log10(raw))
  const step = [1, 2, 2.5, 5, 10].map((k) => k * mag).find((s) => s >= raw)!
  const out: number[] = []
  for (let v = 0; v <= max + step * 0.999; v += step) out.push(v)
  return out
}

interface Series { name: string; color: string; points: [number, number][]; right?: boolean; dash?: boolean }

function timelinePanel(s: Summary, y0: number): string {
  const b = s.burst
  const out: string[] = []
  const x0 = M.left
  const w = W - M.left - M.right
  const h = PANEL_H - M.top - M.bottom
  const top = y0 + M.top
  out.push(`<text x="${x0}" y="${y0 + 22}" class="title">Burst: answers per second by status, and stock left</text>`)
  if (!b?.timeline || b.timeline.buckets.length === 0) {
    out.push(`<text x="${x0}" y="${top + h / 2}" class="note">no burst in this run</text>`)
    return out.join('\n')
  }
  const { bucketMs, buckets } = b.timeline
  const perS = 1000 / bucketMs
  const statuses = [...new Set(buckets.flatMap((k) => Object.keys(k)))].sort()
  const series: Series[] = statuses.map((st) => ({
    name: st, color: COLORS[st] ?? COLORS.other!,
    points: buckets.map((k, i) => [(i + 0.5) * bucketMs / 1000, (k[st] ?? 0) * perS] as [number, number]),
  }))
  let left = b.stock
  const stock: [number, number][] = [[0, b.stock]]
  buckets.forEach((k, i) => { left -= k['201'] ?? 0; stock.push([(i + 1) * bucketMs / 1000, Math.max(0, left)]) })
  series.push({ name: 'stock left', color: COLORS.stock!, points: stock, right: true, dash: true })

  const tMax = (buckets.length * bucketMs) / 1000
  const yTicks = ticks(Math.max(1, ...series.filter((x) => !x.right).flatMap((x) => x.points.map((p) => p[1]))))
  const rTicks = ticks(b.stock)
  const xTicks = ticks(tMax, 8)
  const yMax = yTicks[yTicks.length - 1]!
  const rMax = rTicks[rTicks.length - 1]!
  const xMax = xTicks[xTicks.length - 1]!
  const px = (t: number) => x0 + (t / xMax) * w
  const py = (v: number, right = false) => top + h - (v / (right ? rMax : yMax)) * h

  for (const v of yTicks) out.push(`<line x1="${x0}" x2="${x0 + w}" y1="${py(v)}" y2="${py(v)}" class="grid"/><text x="${x0 - 6}" y="${py(v) + 4}" class="axis" text-anchor="end">${num(v)}</text>`)
  for (const v of rTicks) out.push(`<text x="${x0 + w + 6}" y="${py(v, true) + 4}" class="axis" fill="${COLORS.stock}">${num(v)}</text>`)
  for (const v of xTicks) out.push(`<text x="${px(v)}" y="${top + h + 18}" class="axis" text-anchor="middle">${v.toFixed(v % 1 ? 1 : 0)}</text>`)
  out.push(`<text x="${x0 + w / 2}" y="${top + h + 38}" class="axis" text-anchor="middle">seconds since the first request</text>`)
  out.push(`<text x="${x0 - 50}" y="${top - 8}" class="axis">answers/s</text><text x="${x0 + w - 10}" y="${top - 8}" class="axis" fill="${COLORS.stock}">stock left</text>`)
  out.push(`<rect x="${x0}" y="${top}" width="${w}" height="${h}" class="frame"/>`)
  for (const sr of series) {
    const d = sr.points.map(([t, v], i) => `${i ? 'L' : 'M'}${px(t).toFixed(1)},${py(v, sr.right).toFixed(1)}`).join('')
    out.push(`<path d="${d}" fill="none" stroke="${sr.color}" stroke-width="2"${sr.dash ? ' stroke-dasharray="6 4"' : ''}/>`)
  }
  series.forEach((sr, i) => {
    const lx = x0 + 10 + i * 110
    out.push(`<line x1="${lx}" x2="${lx + 18}" y1="${top + 12}" y2="${top + 12}" stroke="${sr.color}" stroke-width="3"${sr.dash ? ' stroke-dasharray="6 4"' : ''}/><text x="${lx + 24}" y="${top + 16}" class="axis">${esc(sr.name)}</text>`)
  })
  return out.join('\n')
}

function barsPanel(s: Summary, y0: number): string {
  const bars: [string, number | null | undefined][] = [
    ['bare route (ceiling)', s.ceiling?.rps],
    ['issue path', s.issue?.rps],
    ['sold out', s.soldOut?.rps],
    ['burst', s.burst?.rps],
    ['(a) db lock', s.baselines?.dbLock.rps],
    ['(b) redis lock', s.baselines?.redisLock.rps],
    ['(c) INCR + set', s.baselines?.twoStep.rps],
  ]
  const shown = bars.filter((b): b is [string, number] => typeof b[1] === 'number')
  const out: string[] = [`<text x="${M.left}" y="${y0 + 22}" class="title">Throughput (requests/s; same run), ratio to the bare route</text>`]
  if (shown.length === 0) return out.join('\n')
  const x0 = M.left + 90
  const w = W - x0 - M.right - 40
  const top = y0 + M.top
  const rowH = Math.min(32, (PANEL_H - M.top - 20) / shown.length)
  const xTicks = ticks(Math.max(...shown.map((b) => b[1])))
  const xMax = xTicks[xTicks.length - 1]!
  const ceiling = s.ceiling?.rps
  for (const v of xTicks) {
    const x = x0 + (v / xMax) * w
    out.push(`<line x1="${x}" x2="${x}" y1="${top}" y2="${top + rowH * shown.length}" class="grid"/><text x="${x}" y="${top + rowH * shown.length + 16}" class="axis" text-anchor="middle">${num(v)}</text>`)
  }
  shown.forEach(([name, v], i) => {
    const y = top + i * rowH
    const color = name.startsWith('(') ? '#999' : name.startsWith('bare') ? '#555' : COLORS['201']
    const r = ceiling ? ` (${(v / ceiling).toFixed(2)}x)` : ''
    out.push(`<text x="${x0 - 8}" y="${y + rowH * 0.62}" class="axis" text-anchor="end">${esc(name)}</text>`)
    out.push(`<rect x="${x0}" y="${y + rowH * 0.15}" width="${Math.max(1, (v / xMax) * w).toFixed(1)}" height="${(rowH * 0.7).toFixed(1)}" fill="${color}"/>`)
    out.push(`<text x="${x0 + (v / xMax) * w + 6}" y="${y + rowH * 0.62}" class="axis">${Math.round(v).toLocaleString('en-US')}${r}</text>`)
  })
  return out.join('\n')
}

export function renderChart(s: Summary): string {
  const h = PANEL_H * 2 + 40
  const m = s.machine
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${h}" viewBox="0 0 ${W} ${h}" font-family="sans-serif">`,
    '<style>.title{font-size:15px;font-weight:bold}.axis{font-size:11px}.note{font-size:13px;fill:#777}.grid{stroke:#e4e4e4}.frame{fill:none;stroke:#aaa}</style>',
    `<rect width="${W}" height="${h}" fill="white"/>`,
    timelinePanel(s, 0),
    barsPanel(s, PANEL_H),
    `<text x="${M.left}" y="${h - 10}" class="axis" fill="#777">${esc(`${s.date} · ${m.cpus} CPUs · load ${m.loadAverageBefore.join(' ')}${m.loadAverageAfter ? ` → ${m.loadAverageAfter.join(' ')}` : ''} · ${s.command}`)}</text>`,
    '</svg>',
    '',
  ].join('\n')
}
