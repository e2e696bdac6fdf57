/** The Lua script registry (src/redis/scripts.ts) lists every script under src/, as its file declares it. */
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Cluster, Redis } from 'ioredis'
import { defineScripts, scriptSources } from '../../src/redis/scripts.js'

const SRC = fileURLToPath(new URL('../../src/', import.meta.url))
const luaFiles = (readdirSync(SRC, { recursive: true }) as string[]).filter((f) => f.endsWith('.lua'))
  .map((f) => f.split(path.sep).join('/')).sort()
const record = readFileSync(path.join(SRC, 'claims/record.lua'), 'utf8')

t.test('every .lua under src/ is a registered script, or record.lua (prepended to those that need it)', async (t) => {
  const sources = scriptSources()
  const registered = Object.values(sources).map((lua) => luaFiles.find((f) => f !== 'claims/record.lua' &&
    lua.endsWith(readFileSync(path.join(SRC, f), 'utf8')))).sort()
  t.same([...registered, 'claims/record.lua'].sort(), luaFiles, 'one registry entry per script file')
  for (const [name, lua] of Object.entries(sources)) {
    const needsRecord = /Needs record\.lua/.test(lua.slice(record.length))
    t.equal(lua.startsWith(`${record}\n`), needsRecord, `${name}: record.lua prepended exactly when its header asks`)
  }
})

t.test('numberOfKeys is the highest KEYS[n] the script uses', async (t) => {
  const redis = new Redis({ lazyConnect: true })
  const defined: Record<string, number> = {}
  const define = redis.defineCommand.bind(redis)
  redis.defineCommand = (name, def) => { defined[name] = def.numberOfKeys ?? -1; define(name, def) }
  defineScripts(redis)
  for (const [name, lua] of Object.entries(scriptSources())) {
    const own = lua.startsWith(`${record}\n`) ? lua.slice(record.length) : lua
    const highest = Math.max(0, ...[...own.matchAll(/KEYS\[(\d+)\]/g)].map((m) => Number(m[1])))
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
