import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { ConfigSchema } from '../src/config.js'
import { withConfigTable } from '../scripts/config-table.js'
import { ROOT } from './helper.js'

const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8')
const docs = readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => ({ file: `docs/${f}`, text: readFileSync(path.join(ROOT, 'docs', f), 'utf8') }))
const pages = [{ file: 'README.md', text: readme }, ...docs]
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }

t.test('README is the front door: short, first screen in order', async (t) => {
  const lines = readme.split('\n').length
  t.ok(lines <= 200, `README.md has ${lines} lines (<= 200; depth goes to docs/)`)
  const headings = [...readme.matchAll(/^## (.+)$/gm)].map((m) => m[1])
  t.same(headings.slice(0, 3), ['Run it', 'Test it', 'Try it'], 'what it is, then Run it, Test it, Try it')
})

t.test('the configuration table lists exactly the ConfigSchema keys, with their defaults', async (t) => {
  const table = readme.slice(readme.indexOf('<!-- config-table'))
  const rows = [...table.matchAll(/^\| `([A-Z0-9_]+)` \| ([^|]+) \|/gm)].map((m) => ({ name: m[1]!, def: m[2]!.trim() }))
  const props = ConfigSchema.properties as Record<string, { default?: unknown }>
  const names = rows.map((r) => r.name)
  t.same(names.filter((n) => !(n in props)), [], 'no row for a variable ConfigSchema does not have')
  t.same(Object.keys(props).filter((k) => !names.includes(k)), [], 'every ConfigSchema key has a row')
  t.equal(new Set(names).size, names.length, 'one row per variable')
  for (const { name, def } of rows) {
    const schemaDefault = props[name]?.default
    t.equal(def, schemaDefault === undefined ? '—' : `\`${String(schemaDefault)}\``, `${name}: default as in ConfigSchema`)
  }
  // Descriptions too: the table is ConfigSchema's, rewritten by npm run docs:config.
  t.equal(readme, withConfigTable(readme), 'the table is exactly what npm run docs:config builds from ConfigSchema ' +
    '(defaults and descriptions); run it after changing a key')
  const example = readFileSync(path.join(ROOT, '.env.example'), 'utf8')
  for (const [, name] of example.matchAll(/^#?\s*([A-Z0-9_]+)=/gm)) {
    if (!(name! in props)) t.match(readme, name!, `.env.example's ${name} (compose-only) is mentioned in the README`)
  }
})

t.test('no stale references or changelog passages', async (t) => {
  for (const { file, text } of pages) {
    for (const stale of ['docs/readme-worker.md', 'bench/scenarios.ts', 'drainOnce', 'prebench', 'prestart', '(new)', 'API additions']) {
      t.notOk(text.includes(stale), `${file} does not mention ${stale}`)
    }
  }
})

t.test('every file and doc link named in README.md and docs/ exists', async (t) => {
  for (const { file, text } of pages) {
    const base = file === 'README.md' ? ROOT : path.join(ROOT, 'docs')
    for (const [, target, anchor] of text.matchAll(/\]\(((?!https?:)[^)#\s]+)(?:#([^)\s]+))?\)/g)) {
      const p = path.join(base, target!)
      t.ok(existsSync(p), `${file}: link ${target} exists`)
      if (anchor && target!.endsWith('.md') && existsSync(p)) {
        const slugs = [...readFileSync(p, 'utf8').matchAll(/^#+ (.+)$/gm)].map((m) => m[1]!.toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-'))
        t.ok(slugs.includes(anchor), `${file}: anchor ${target}#${anchor} exists`)
      }
    }
    for (const [, p] of text.matchAll(/`((?:src|scripts|bench|test|drizzle|docs)\/[\w./*-]+\.(?:ts|lua|sql|md|mjs|json|png))`/g)) {
      if (p!.includes('*')) {
        const [dir, pattern] = [path.dirname(p!), path.basename(p!)]
        const re = new RegExp(`^${pattern.replace(/\./g, '\\.').replace(/\*/g, '.*')}$`)
        t.ok(existsSync(path.join(ROOT, dir)) && readdirSync(path.join(ROOT, dir)).some((f) => re.test(f)), `${file}: ${p} matches a file`)
      } else {
        t.ok(existsSync(path.join(ROOT, p!)), `${file}: ${p} exists`)
      }
    }
  }
  // The code map names files relative to src/.
  const map = readme.slice(readme.indexOf('## Code map'), readme.indexOf('## Configuration'))
  for (const [, p] of map.matchAll(/`([\w-]+\/[\w./*-]+\.(?:ts|lua))`/g)) {
    if (p!.includes('*')) continue
    t.ok(existsSync(path.join(ROOT, 'src', p!)) || existsSync(path.join(ROOT, p!)), `code map: ${p} exists`)
  }
})

t.test('every npm command in README.md and docs/ exists, with options its --help lists', async (t) => {
  const helps = new Map<string, string>()
  const helpOf = (script: string) => {
    if (!helps.has(script)) {
      const m = /^node (dist\/\S+\.js)$/.exec(pkg.scripts[script] ?? '')
      helps.set(script, m ? spawnSync(process.execPath, [path.join(ROOT, m[1]!), '--help'], { encoding: 'utf8', timeout: 60_000 }).stdout : '')
    }
    return helps.get(script)!
  }
  let checked = 0
  for (const { file, text } of pages) {
    for (const [cmd, script, args] of text.matchAll(/npm run (?:-s )?([\w:-]+)(?: -- ([^`\n|)]*))?/g)) {
      t.ok(script! in pkg.scripts, `${file}: \`${cmd.trim()}\`: npm script ${script} exists`)
      checked++
      for (const [, flag] of (args ?? '').matchAll(/(?:^|\s)(--[a-z][\w-]*)/g)) {
        const help = helpOf(script!)
        t.ok(help.includes(`${flag} `) || help.includes(`${flag}\n`), `${file}: ${script} accepts ${flag} (its --help lists it)`)
      }
    }
  }
  t.ok(checked > 10, `${checked} npm commands checked`)
})
