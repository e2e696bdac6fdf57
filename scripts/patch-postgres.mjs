// Patches the `postgres` driver (3.4.x) in node_modules; runs at install (postinstall, and explicitly in the
// Dockerfile, whose installs skip lifecycle scripts). Idempotent; exits 1 if the driver's code is not the
// code this patch was written for, so an upgrade cannot silently drop it. src/db/client.ts refuses to start
// on an unpatched driver (driverPatched).
//
// The defect (porsager/postgres issues 1066, 1154, 1208; the fix combines the ideas of pull requests 1168,
// 1176 and 1209, none released: 3.4.10 and 4.x do not carry it, 4.x is a rewrite): a write under 1 KB is
// deferred to a setImmediate. If the socket closes first, closed() sets `socket = null`, and a write issued
// after the close (the ROLLBACK a transaction sends when its statement failed) runs `socket.write` on null
// inside the immediate: a TypeError no caller can catch, so the process exits. And closed()/terminate()
// cancel the immediate without forgetting it (`nextWriteTimer` stays non-null, `chunk` keeps the bytes), so
// after a reconnect no small write is ever scheduled again and the stale bytes precede the next message: the
// connection hangs until something times it out.
// The patch: a write with no socket rejects the connection's queries with CONNECTION_CLOSED (the callers
// retry) instead of throwing; teardown forgets the cancelled timer and the unsent bytes.
//
// A second defect strands `sql.reserve()` (the worker reserves a connection per batch) after an outage
// (porsager/postgres issue 1195, open, no fix released): a reserve waits as a pseudo-query in the pool's
// queue, and (1) a failed connect rejects it but leaves it queued, so once PostgreSQL is back a connection
// is handed to the settled promise and is lost to the pool for good; (2) a connection closing hands the
// queue's head to its reconnect as the initial query, and a reconnect that succeeds drops a reserve given
// that way, so that reserve never settles. Found as batches stuck until the reclaim after an outage
// (test/worker-outage.test.ts). The patch: a rejected reserve leaves the queue; a reserve handed to a
// reconnect also stays queued, where the pool's onopen serves it.
//
// A third: a new connection's first statement is the driver's own array-types query, run by an async
// function whose promise is dropped (issues 279, 1192, 1205, open): when that query fails (the connection
// closed or cut by the silence watchdog during a black hole, a statement timeout) the rejection is
// unhandled, and Node ends the process. Found as an unhandled ETIMEDOUT in test/pg-trouble.test.ts. The
// patch: the dropped promise is caught (the connection's own error path has already failed its queries).
//
// A fourth strands a COPY FROM STDIN: the stream's final() writes CopyDone and keeps its callback until
// CommandComplete, but a connection that fails meanwhile (closed, cut by the silence watchdog, an
// ErrorResponse such as a statement timeout) never calls it, so the stream neither finishes nor errors and
// the worker's batch waits forever on its reserved connection. Found as a batch never persisted after a
// black hole (test/pg-trouble.test.ts). The patch: a connection's error fails the pending final() too.
//
// A fifth: a reserved connection that closes is taken back by the pool (onclose reconnects it for the next
// queued query) while its holder still has it. sql.begin() watches for that (connection.onclose); reserve()
// does not, so the holder's next query ran on the connection's next life, queued behind another caller's
// startup, and never settled; its queries queued meanwhile were never run; and its release() put a closed
// or reconnecting connection into the open queue. Found as a worker batch stuck after 'reserved' for good
// after a black hole (test/pg-trouble.test.ts). The patch: a reserved connection's close fails its holder's
// queued and later queries with the close's error, and releasing it leaves it to the pool.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const MARKER = '/* fcfs-patch: nextWrite without a socket */'
const RESERVE_MARKER = '/* fcfs-patch: reserve leaves the queue */'
const TYPES_MARKER = '/* fcfs-patch: array types failure handled */'
const COPY_MARKER = '/* fcfs-patch: copy final fails with its connection */'
const RESERVED_CLOSE_MARKER = '/* fcfs-patch: a reserved connection that closes fails its holder */'

const CONNECTION_EDITS = [
  {
    what: 'nextWrite without a socket rejects instead of throwing',
    from: '  function nextWrite(fn) {\n    const x = socket.write(chunk, fn)',
    to: `  function nextWrite(fn) {
    ${MARKER}
    if (!socket) {
      nextWriteTimer !== null && clearImmediate(nextWriteTimer)
      chunk = nextWriteTimer = null
      error(Errors.connection('CONNECTION_CLOSED', options))
      return false
    }
    const x = socket.write(chunk, fn)`,
  },
  {
    what: 'terminate() forgets the cancelled write',
    from: "      error(Errors.connection('CONNECTION_DESTROYED', options))\n\n    clearImmediate(nextWriteTimer)\n",
    to: "      error(Errors.connection('CONNECTION_DESTROYED', options))\n\n    clearImmediate(nextWriteTimer)\n" +
      '    chunk = nextWriteTimer = null\n',
  },
  {
    what: 'closed() forgets the cancelled write',
    from: '    incomings = null\n    clearImmediate(nextWriteTimer)\n',
    to: '    incomings = null\n    clearImmediate(nextWriteTimer)\n    chunk = nextWriteTimer = null\n',
  },
]

const TYPES_EDITS = [
  {
    what: 'a failed array-types query is not an unhandled rejection',
    from: '        return fetchArrayTypes()\n',
    to: `        return fetchArrayTypes().catch(() => {}) ${TYPES_MARKER}\n`,
  },
]

const COPY_EDITS = [
  {
    what: "a connection's error fails a COPY's pending final()",
    from: '  function errored(err) {\n    stream && (stream.destroy(err), stream = null)\n',
    to: '  function errored(err) {\n    stream && (stream.destroy(err), stream = null)\n' +
      `    final && (final(err), final = null) ${COPY_MARKER}\n`,
  },
]

const INDEX_EDITS = [
  {
    what: 'a rejected reserve leaves the queue',
    from: '        const query = { reserve: resolve, reject }\n',
    to: `        ${RESERVE_MARKER}
        const query = { reserve: resolve, reject: (err) => (queries.remove(query), reject(err)) }
`,
  },
  {
    what: 'a reserve handed to a reconnect stays queued',
    from: '    queries.length && connect(c, queries.shift())\n',
    to: `    if (queries.length) {
      const query = queries.shift()
      query.reserve && queries.push(query)
      connect(c, query)
    }
`,
  },
]

const RESERVED_CLOSE_EDITS = [
  {
    what: "a reserved connection's close fails its holder's queries",
    from: '    move(c, reserved)\n    c.reserved = () => queue.length\n',
    to: `    move(c, reserved)
    let lost = null ${RESERVED_CLOSE_MARKER}
    c.onclose = (e) => {
      lost = e || Errors.connection('CONNECTION_CLOSED', options)
      while (queue.length) queue.shift().reject(lost)
    }
    c.reserved = () => queue.length
`,
  },
  {
    what: 'releasing a closed reserved connection leaves it to the pool',
    from: '    sql.release = () => {\n      c.reserved = null\n      onopen(c)\n    }\n',
    to: '    sql.release = () => {\n      if (lost) return\n      c.onclose = null\n' +
      '      c.reserved = null\n      onopen(c)\n    }\n',
  },
  {
    what: 'a query on a closed reserved connection rejects',
    from: '    function handler(q) {\n      c.queue === full\n        ? queue.push(q)\n',
    to: '    function handler(q) {\n      if (lost) return q.reject(lost)\n' +
      '      c.queue === full\n        ? queue.push(q)\n',
  },
]

/** The driver's three builds (ESM, CommonJS, Cloudflare): each has its own copy of both files. */
const BUILDS = ['src', 'cjs/src', 'cf/src']
const FILES = BUILDS.flatMap((b) => [
  { rel: `${b}/connection.js`, marker: MARKER, edits: CONNECTION_EDITS },
  { rel: `${b}/connection.js`, marker: TYPES_MARKER, edits: TYPES_EDITS },
  { rel: `${b}/connection.js`, marker: COPY_MARKER, edits: COPY_EDITS },
  { rel: `${b}/index.js`, marker: RESERVE_MARKER, edits: INDEX_EDITS },
  { rel: `${b}/index.js`, marker: RESERVED_CLOSE_MARKER, edits: RESERVED_CLOSE_EDITS },
])

function patchDriver(dir) {
  for (const { rel, marker, edits } of FILES) {
    const file = path.join(dir, rel)
    if (!existsSync(file)) continue
    let text = readFileSync(file, 'utf8')
    if (text.includes(marker)) continue
    for (const e of edits) {
      if (text.split(e.from).length !== 2) {
        throw new Error(`${file}: cannot apply "${e.what}": the driver's code differs from postgres 3.4.9/3.4.10`)
      }
      text = text.replace(e.from, e.to)
    }
    writeFileSync(file, text)
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
  // The driver's directory: node_modules/postgres unless given (the test patches a copy).
  const dir = process.argv[2] ?? path.join(root, 'node_modules', 'postgres')
  if (!existsSync(dir)) {
    console.error(`patch-postgres: ${dir} is missing (run npm ci first)`)
    process.exit(1)
  }
  try {
    patchDriver(dir)
    console.log('patch-postgres: postgres driver patched ' +
      '(nextWrite after close, reserve after an outage, array types failure, COPY on a failed connection, ' +
      'a reserved connection that closes)')
  } catch (err) {
    console.error(`patch-postgres: ${err.message}`)
    process.exit(1)
  }
}
