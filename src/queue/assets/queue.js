// The waiting page: joins the line, polls the public state each second (a cached, per-campaign answer) and
// asks for the user's own place only when it may have changed. Nothing is fetched from another origin.
'use strict'
const id = decodeURIComponent(location.pathname.split('/').filter(Boolean).pop() || '')
const $ = (sel) => document.getElementById(sel)
const base = `/v1/campaigns/${encodeURIComponent(id)}`
let token = sessionStorage.getItem('fcfs-queue-token') || ''
let me = null
let room = null
let meAt = 0

const MESSAGES = {
  pre_queue: 'You are in the pre-queue. At the opening a public draw puts everyone here in order.',
  waiting: 'You are in line. Keep this page open: it tells you when it is your turn.',
  admitted: '',
  claimed: 'You have claimed your unit. Thank you!',
  expired: 'Your turn passed without a claim, and the unit was offered to the next person in line.',
  sold_out: 'Sold out: every unit has been claimed and none can come back. Sorry!',
}

async function call(method, path) {
  const headers = token ? { authorization: `Bearer ${token}` } : {}
  const res = await fetch(base + path, { method, headers })
  let body = null
  try { body = await res.json() } catch { /* not JSON */ }
  return { status: res.status, body }
}

function show(el, on) { el.hidden = !on }
function text(el, v) { el.textContent = v === null || v === undefined ? '–' : String(v) }

function render() {
  if (room) {
    text($('room'), room.state.replace('_', ' '))
    text($('serving'), room.servingUpTo)
    text($('length'), room.length)
    text($('seed-hash'), room.seedHash)
    text($('seed'), room.seed ?? 'not yet (revealed at the opening)')
  }
  if (!me) return
  show($('join'), false)
  show($('place'), true)
  text($('ticket'), me.ticket)
  text($('position'), me.position ?? 'drawn at the opening')
  // Between two reads of our own place, the public servingUpTo keeps "ahead" current.
  const ahead = me.position !== null && room && me.state === 'waiting'
    ? Math.max(0, me.position - room.servingUpTo - 1) : me.ahead
  text($('ahead'), ahead)
  text($('wait'), me.estimatedWaitSeconds === null ? '–' : `${me.estimatedWaitSeconds} s`)
  let state = me.state
  if (state === 'waiting' && room && room.state === 'sold_out') state = 'sold_out'
  text($('message'), MESSAGES[state] ?? '')
  show($('turn'), state === 'admitted')
  if (state === 'admitted') text($('until'), new Date(me.admittedUntil).toLocaleTimeString())
}

async function refreshMe() {
  const r = await call('GET', '/queue/me')
  if (r.status === 200) { me = r.body; meAt = Date.now() }
}

async function poll() {
  try {
    const r = await call('GET', '/queue')
    if (r.status === 200) room = r.body
    // Our own place is read when the line moved past it, or every 5 s (pre-queue positions, expiries).
    const due = me && (Date.now() - meAt > 5000 || (me.state === 'pre_queue' && room && room.state !== 'pre_queue') ||
      (me.state === 'waiting' && me.position !== null && room && room.servingUpTo >= me.position) ||
      (me.state === 'waiting' && room && room.state === 'sold_out'))
    if (due) await refreshMe()
    render()
  } catch { /* the next poll retries */ }
  setTimeout(poll, 1000)
}

async function join() {
  const r = await call('POST', '/queue')
  if (r.status !== 200 && r.status !== 201) {
    text($('join-error'), (r.body && r.body.message) || `could not join (${r.status})`)
    show($('join-error'), true)
    return
  }
  show($('join-error'), false)
  sessionStorage.setItem('fcfs-queue-token', token)
  await refreshMe()
  render()
}

$('join').addEventListener('submit', (e) => {
  e.preventDefault()
  token = $('token').value.trim()
  void join()
})

$('claim').addEventListener('click', async () => {
  $('claim').disabled = true
  const r = await call('POST', '/claims')
  show($('result'), true)
  text($('result'), r.status === 201 ? `Claimed! Your number is ${r.body.sequence}.`
    : (r.body && r.body.message) || `The claim failed (${r.status}).`)
  await refreshMe()
  render()
  $('claim').disabled = false
})

$('draw-link').href = `${base}/queue/draw`
if (token) void join()
void poll()
