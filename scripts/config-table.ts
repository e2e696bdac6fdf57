// README's configuration table, built from ConfigSchema: each key's default and description live there only.
import { ConfigSchema } from '../src/config.js'

const START = '<!-- config-table'

/** One row per ConfigSchema key, in schema order. */
export function renderConfigTable(): string {
  const props = ConfigSchema.properties as Record<string, { default?: unknown, description?: string }>
  const rows = Object.entries(props).map(([name, p]) => {
    if (!p.description) throw new Error(`ConfigSchema.${name} has no description (README's table is built from it)`)
    const def = p.default === undefined ? '—' : `\`${String(p.default)}\``
    return `| \`${name}\` | ${def} | ${p.description} |`
  })
  return ['| Variable | Default | Meaning |', '|---|---|---|', ...rows].join('\n')
}

/** readme with the table after its `<!-- config-table … -->` marker (up to the next blank line) rebuilt. */
export function withConfigTable(readme: string): string {
  const marker = readme.indexOf(START)
  if (marker < 0) throw new Error(`README.md has no ${START} … --> marker`)
  const start = readme.indexOf('\n', marker) + 1
  const end = readme.indexOf('\n\n', start)
  return readme.slice(0, start) + renderConfigTable() + readme.slice(end < 0 ? readme.length : end)
}
