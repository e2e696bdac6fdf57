// tsc compiles .ts only; the Lua scripts and the live page's files are read at run time next to the
// modules that load them.
import { cpSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name)
    if (statSync(p).isDirectory()) walk(p)
    else if (p.endsWith('.lua')) cpSync(p, path.join('dist', p))
  }
}
walk('src')
walk('bench')
cpSync('src/live/assets', 'dist/src/live/assets', { recursive: true })
cpSync('src/queue/assets', 'dist/src/queue/assets', { recursive: true })
// When the build finished: `npm run dev` warns when the source is newer (dist/ is built once, not per run).
writeFileSync(path.join('dist', '.build-stamp'), `${new Date().toISOString()}\n`)
