import { readdirSync, statSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

/**
 * Node arguments that run an entry point (e.g. 'src/server') from the build, as production does.
 * Child processes start in a fraction of tsx's time and CPU; `npm test` builds first, and
 * a build older than its sources fails loudly instead of testing stale code.
 */
export function entryArgs(rel: string): string[] {
  assertFreshBuild()
  return ['--enable-source-maps', path.join(ROOT, 'dist', `${rel}.js`)]
}

let checked = false
function assertFreshBuild() {
  if (checked) return
  for (const dir of ['src', 'scripts', 'bench']) {
    for (const f of readdirSync(path.join(ROOT, dir), { recursive: true, encoding: 'utf8' })) {
      if (!f.endsWith('.ts') || f.endsWith('.d.ts')) continue
      const built = path.join(ROOT, 'dist', dir, f.replace(/\.ts$/, '.js'))
      let builtAt = 0
      try { builtAt = statSync(built).mtimeMs } catch { /* missing: stale */ }
      if (builtAt < statSync(path.join(ROOT, dir, f)).mtimeMs) {
        throw new Error(`${built} is missing or older than ${dir}/${f}: run \`npm run build\` (npm test does)`)
      }
    }
  }
  checked = true
}
