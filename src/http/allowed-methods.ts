import type { FastifyInstance } from 'fastify'

/**
 * Which methods each route pattern serves, so an unknown method on a known path answers 405 with `Allow`
 * instead of 404. Fastify's router only says "no route"; it cannot tell a wrong path from a wrong method.
 * Call before any route is registered: the onRoute hook sees only routes added after it.
 */
export function trackAllowedMethods(app: FastifyInstance): (path: string) => string[] {
  const patterns = new Map<string, { re: RegExp; methods: Set<string> }>()
  app.addHook('onRoute', (route) => {
    // The CORS preflight route answers OPTIONS on every path; it says nothing about a path's methods.
    if (route.url === '*') return
    let entry = patterns.get(route.url)
    if (!entry) {
      const source = route.url.split('/').map((seg) => (seg.startsWith(':') ? '[^/]+' : seg === '*' ? '.*' : seg.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))).join('/')
      entry = { re: new RegExp(`^${source}$`), methods: new Set() }
      patterns.set(route.url, entry)
    }
    for (const m of [route.method].flat()) entry.methods.add(m)
  })
  return (path) => {
    const allowed = new Set<string>()
    for (const { re, methods } of patterns.values()) if (re.test(path)) for (const m of methods) allowed.add(m)
    return [...allowed].sort()
  }
}
