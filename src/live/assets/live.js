// The live page: asks for the admin token, keeps it in memory only, and reads the campaign's feed with
// fetch (EventSource cannot send an Authorization header, and a token in a URL would end up in logs).
'use strict'

const WINDOW = 180 // points kept on the chart: 3 minutes at one a second
const OUTCOMES = ['201', '409', '410', '429', 'errors']
const $ = (sel) => document.querySelector(sel)
let token = null
let feed = null // { campaignId, controller }
let points = [] // [{ t, rates }]

function setStatus(text, kind) {
  const el = $('#status')
  el.textContent = text
  el.className = `status ${kind || ''}`
}

async function api(path) {
  const res = await fetch(path, { headers: { authorization: `Bearer ${token}` }, cache: 'no-store' })
  if (res.status === 401) throw Object.assign(new Error('wrong admin token'), { status: 401 })
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`)
  return res.json()
}

async function loadCampaigns() {
  const { campaigns } = await api('/admin/campaigns')
  const select = $('#campaign')
  const chosen = select.value
  select.replaceChildren(new Option('choose a campaign…', ''))
  for (const c of campaigns) select.add(new Option(`#${c.id} ${c.name} (stock ${c.stock})`, c.id))
  select.value = chosen
}

$('#login').addEventListener('submit', async (ev) => {
  ev.preventDefault()
  token = $('#token').value.trim()
  $('#token').value = ''
  const err = $('#login-error')
  try {
    await loadCampaigns()
    err.hidden = true
    $('#login').hidden = true
    $('#app').hidden = false
    setStatus('signed in')
  } catch (e) {
    token = null
    err.textContent = e.status === 401 ? 'That token was refused.' : `Could not sign in: ${e.message}`
    err.hidden = false
  }
})

$('#logout').addEventListener('click', () => {
  stopFeed()
  token = null
  $('#app').hidden = true
  $('#view').hidden = true
  $('#login').hidden = false
  setStatus('signed out')
})

$('#refresh').addEventListener('click', () => loadCampaigns().catch((e) => setStatus(e.message, 'problem')))
$('#campaign').addEventListener('change', (ev) => {
  const id = ev.target.value
  stopFeed()
  if (id) startFeed(id)
  else $('#view').hidden = true
})

function stopFeed() {
  if (feed) feed.controller.abort()
  feed = null
}

function startFeed(campaignId) {
  points = []
  drawChart()
  $('#view').hidden = false
  const controller = new AbortController()
  feed = { campaignId, controller }
  readFeed(campaignId, controller.signal)
}

// Reads the event stream; reconnects after a network error unless the feed ended or was replaced.
async function readFeed(campaignId, signal) {
  for (;;) {
    let ended = false
    try {
      setStatus('connecting…')
      const res = await fetch(`/admin/campaigns/${campaignId}/live`, {
        headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' }, signal, cache: 'no-store',
      })
      if (!res.ok) {
        const body = await res.json().catch(() => ({}))
        setStatus(body.message || `HTTP ${res.status}`, 'problem')
        if (res.status === 401 || res.status === 404) return
        throw new Error(`HTTP ${res.status}`)
      }
      setStatus('live', 'live')
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
      let buf = ''
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        buf += value
        let cut
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, cut)
          buf = buf.slice(cut + 2)
          ended = onEvent(block) || ended
        }
      }
    } catch (e) {
      if (signal.aborted) return
    }
    if (ended || signal.aborted) return
    setStatus('reconnecting…', 'problem')
    await new Promise((r) => setTimeout(r, 2000))
    if (signal.aborted) return
  }
}

/** Handles one SSE block; returns true when the feed has ended for good. */
function onEvent(block) {
  let event = 'message'
  const data = []
  for (const line of block.split('\n')) {
    if (line.startsWith('event:')) event = line.slice(6).trim()
    else if (line.startsWith('data:')) data.push(line.slice(5).trimStart())
  }
  if (data.length === 0) return false
  const payload = JSON.parse(data.join('\n'))
  if (event === 'snapshot') render(payload)
  else if (event === 'problem') setStatus(payload.message, 'problem')
  else if (event === 'end') {
    setStatus(`feed ended: ${payload.reason}`, 'problem')
    const st = $('#state')
    st.textContent = 'archived'
    st.className = 'state archived'
    return true
  }
  return false
}

const fmt = (n) => (n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US'))
function setField(name, value, text) {
  const el = document.querySelector(`[data-field="${name}"]`)
  el.dataset.value = value === null || value === undefined ? '' : String(value)
  el.textContent = text ?? fmt(value)
}

function render(s) {
  if (!feed || s.campaignId !== feed.campaignId) return
  setStatus('live', 'live')
  $('#name').textContent = `#${s.campaignId} ${s.name}`
  const st = $('#state')
  st.textContent = s.state.replace('_', ' ')
  st.className = `state ${s.state}`
  for (const k of ['remaining', 'issued', 'persisted', 'pending', 'deadLettered', 'stock']) setField(k, s[k])
  // The waiting room's tiles, shown only for a campaign with a queue.
  const q = s.queue
  for (const el of document.querySelectorAll('.tile.queue')) el.hidden = !q
  if (q) {
    setField('queueLength', q.length)
    setField('servingUpTo', q.servingUpTo)
    setField('admitted', q.admitted)
    setField('admissionsExpired', q.expired)
    const s1 = (v) => (v === null ? '–' : `${v.toFixed(1)} s`)
    setField('wait', q.waitP50, `${s1(q.waitP50)} / ${s1(q.waitP95)}`)
  }
  setField('backlog', s.stream.backlog)
  setField('lag', s.stream.lag)
  setField('oldestAge', s.stream.oldestAgeMs,
    s.stream.oldestAgeMs === null ? '–' : `${(s.stream.oldestAgeMs / 1000).toFixed(1)} s`)
  for (const o of OUTCOMES) document.querySelector(`[data-rate="${o}"]`).textContent = fmt(s.claimsPerSecond[o])
  $('#updated').textContent = `last update ${new Date(s.at).toLocaleTimeString()}`
  points.push({ t: Date.parse(s.at), rates: s.claimsPerSecond })
  if (points.length > WINDOW) points = points.slice(-WINDOW)
  drawChart()
}

// Plain SVG: x spans the time since the first point (at least 30 s, at most the last WINDOW seconds),
// y 0..a round maximum.
function drawChart() {
  const svg = $('#chart')
  svg.dataset.points = String(points.length)
  const max = niceMax(Math.max(1, ...points.flatMap((p) => OUTCOMES.map((o) => p.rates[o] || 0))))
  $('#ymax').textContent = fmt(max)
  const now = points.length ? points[points.length - 1].t : Date.now()
  const spanS = Math.min(WINDOW, Math.max(30, Math.ceil((now - (points.length ? points[0].t : now)) / 1000)))
  $('#xmin').textContent = spanS >= 120 ? `−${Math.round(spanS / 60)} min` : `−${spanS} s`
  const x = (t) => 40 + 670 * (1 - Math.min(1, (now - t) / (spanS * 1000)))
  const y = (v) => 200 - 190 * (v / max)
  for (const o of OUTCOMES) {
    const line = svg.querySelector(`polyline[data-outcome="${o}"]`)
    line.setAttribute('points', points.map((p) => `${x(p.t).toFixed(1)},${y(p.rates[o] || 0).toFixed(1)}`).join(' '))
  }
}

function niceMax(v) {
  const p = 10 ** Math.floor(Math.log10(v))
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p
  return 10 * p
}
