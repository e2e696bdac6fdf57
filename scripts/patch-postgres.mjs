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
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const MARKER = '/* fcfs-patch: nextWrite without a socket */'

const EDITS = [
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

/** The driver's three builds (ESM, CommonJS, Cloudflare): each has its own copy of connection.js. */
const FILES = ['src/connection.js', 'cjs/src/connection.js', 'cf/src/connection.js']

function patchDriver(dir) {
  for (const rel of FILES) {
    const file = path.join(dir, rel)
    if (!existsSync(file)) continue
    let text = readFileSync(file, 'utf8')
    if (text.includes(MARKER)) continue
    for (const e of EDITS) {
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
    console.log('patch-postgres: postgres driver patched (nextWrite after close)')
  } catch (err) {
    console.error(`patch-postgres: ${err.message}`)
    process.exit(1)
  }
}
