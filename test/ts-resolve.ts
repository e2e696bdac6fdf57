/**
 * Loaded by tap with `--import` (package.json), with Node's own type stripping (TAP_TYPE_STRIP_ONLY=1)
 * instead of a TypeScript compiler in every test process: the project's sources import each other as
 * `./x.js`, as the build does, and this answers such an import with `./x.ts` when only the `.ts` exists.
 */
import { existsSync } from 'node:fs'
import { registerHooks } from 'node:module'
import { fileURLToPath } from 'node:url'

registerHooks({
  resolve(specifier, context, next) {
    const parent = context.parentURL
    if ((specifier.startsWith('./') || specifier.startsWith('../')) && specifier.endsWith('.js') &&
      parent?.startsWith('file:') && parent.endsWith('.ts') && !parent.includes('/node_modules/')) {
      const url = new URL(specifier, parent)
      if (!existsSync(fileURLToPath(url))) {
        const ts = new URL(url.href.replace(/\.js$/, '.ts'))
        if (existsSync(fileURLToPath(ts))) return next(ts.href, context)
      }
    }
    return next(specifier, context)
  },
})
