// npm run docs:config: rewrites README.md's configuration table from ConfigSchema (test/readme.test.ts
// fails while it is out of date). Run it after adding or changing a config key.
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { withConfigTable } from './config-table.js'

// dist/scripts/docs-config.js -> the repository root.
const file = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'README.md')
const before = readFileSync(file, 'utf8')
const after = withConfigTable(before)
if (after !== before) writeFileSync(file, after)
console.log(`README.md configuration table ${after === before ? 'already up to date' : 'rewritten'}`)
