/**
 * src/esm-fast-path.ts answers only where Node's own resolver could only give the same answer: a package
 * of its own (a temporary node_modules) is loaded with and without the hook, and every module must come
 * out the same (URL, CommonJS or ESM), a missing file must fail the same way.
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const HOOK = fileURLToPath(new URL('../../dist/src/esm-fast-path.js', import.meta.url))

t.test('the fast path loads what Node loads, and refuses what Node refuses', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fcfs-esm-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const pkg = path.join(dir, 'node_modules', 'pkg')
  const files: Record<string, string> = {
    'package.json': JSON.stringify({ name: 'pkg', type: 'module', exports: { '.': './index.js', './broken.js': './broken.js' } }),
    'index.js': 'import { b } from \'./lib/b.js\'\nimport { b as linked } from \'./lib/link.js\'\n' +
      'import c from \'./cjs/c.js\'\nexport const seen = [b, c.kind, import.meta.url, linked === b]',
    'lib/b.js': 'export const b = [\'esm\', import.meta.url]',
    // A nested package.json turns its folder back to CommonJS: the hook must leave it to Node.
    'cjs/package.json': JSON.stringify({ type: 'commonjs' }),
    'cjs/c.js': 'module.exports = { kind: [\'cjs\', typeof require] }',
    'broken.js': 'import \'./missing.js\'',
  }
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(pkg, f)), { recursive: true })
    writeFileSync(path.join(pkg, f), text)
  }
  // A symlink to b.js is the same module as b.js (Node resolves to the real path).
  symlinkSync('b.js', path.join(pkg, 'lib', 'link.js'))
  const main = path.join(dir, 'main.mjs')
  writeFileSync(main, `const m = await import('pkg'); console.log(JSON.stringify(m.seen))
    try { await import('pkg/broken.js') } catch (e) { console.log(e.code) }`)
  const run = (args: string[]) => spawnSync(process.execPath, [...args, main], { cwd: dir, encoding: 'utf8' })
  const plain = run([])
  const fast = run(['--import', HOOK])
  t.equal(fast.status, 0, fast.stderr)
  t.equal(fast.stdout, plain.stdout, 'same modules, same formats, same error')
  const [seen, code] = fast.stdout.trim().split('\n')
  t.match(JSON.parse(seen!), [['esm', /lib\/b\.js$/], ['cjs', 'function'], /index\.js$/, true])
  t.equal(code, 'ERR_MODULE_NOT_FOUND', 'a missing file is still Node\'s error')
})
