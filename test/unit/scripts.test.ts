/** The Lua script registry (src/redis/scripts.ts) lists every script under src/, as its file declares it. */
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Cluster, Redis } from 'ioredis'
import { defineScripts, includesOf, scriptFiles, scriptSources } from '../../src/redis/scripts.js'

const SRC = fileURLToPath(new URL('../../src/', import.meta.url))
const luaFiles = (readdirSync(SRC, { recursive: true }) as string[]).filter((f) => f.endsWith('.lua'))
  .map((f) => f.split(path.sep).join('/')).sort()
const own = (f: string) => readFileSync(path.join(SRC, f), 'utf8')
const libraries = new Set(luaFiles.flatMap((f) => includesOf(own(f))))

t.test('every .lua under src/ is a registered script or a library a script includes', async (t) => {
  const files = Object.values(scriptFiles())
  t.same([...files, ...libraries].sort(), luaFiles, 'one registry entry per script file, every other file included')
  t.same(files.filter((f) => libraries.has(f)), [], 'no script is also a library')
  for (const [name, lua] of Object.entries(scriptSources())) {
    const file = scriptFiles()[name as keyof ReturnType<typeof scriptFiles>]
    t.ok(lua.endsWith(own(file)), `${name}: its own file comes last`)
    for (const lib of includesOf(own(file))) t.ok(lua.includes(own(lib)), `${name}: ${lib} prepended`)
  }
})

t.test('the stored formats have one Lua home each: users record, campaign hash, stream entry', async (t) => {
  const homes: [RegExp, string][] = [
    [/'(stock|perUserLimit|issued|returned|holdSeconds|ended)'/, 'redis/campaign-hash.lua'],
    [/'XADD'/, 'redis/stream-entry.lua'],
    [/string\.match\(record|'\^\(%d\+\);'/, 'redis/users-record.lua'],
  ]
  for (const [pattern, home] of homes) {
    const found = luaFiles.filter((f) => f !== 'worker/delete-idle-consumer.lua' && pattern.test(own(f)))
    t.same(found, [home], `${pattern} only in ${home}`)
  }
})

t.test('numberOfKeys is the highest KEYS[n] the script uses', async (t) => {
  const redis = new Redis({ lazyConnect: true })
  const defined: Record<string, number> = {}
  const define = redis.defineCommand.bind(redis)
  redis.defineCommand = (name, def) => { defined[name] = def.numberOfKeys ?? -1; define(name, def) }
  defineScripts(redis)
  for (const [name, lua] of Object.entries(scriptSources())) {
    const file = own(scriptFiles()[name as keyof ReturnType<typeof scriptFiles>])
    t.ok(lua.endsWith(file))
    const highest = Math.max(0, ...[...file.matchAll(/KEYS\[(\d+)\]/g)].map((m) => Number(m[1])))
    t.equal(defined[name], highest, `${name}: ${highest} keys`)
    t.type((redis as unknown as Record<string, unknown>)[name], 'function', `${name} is a command on the client`)
  }
  redis.disconnect()
})

t.test('a Cluster client gets the same commands (no connection needed to define them)', async (t) => {
  const cluster = new Cluster([{ host: '127.0.0.1', port: 1 }], { lazyConnect: true })
  defineScripts(cluster)
  for (const name of Object.keys(scriptSources())) {
    t.type((cluster as unknown as Record<string, unknown>)[name], 'function', `${name} on the Cluster client`)
  }
  cluster.disconnect()
})
