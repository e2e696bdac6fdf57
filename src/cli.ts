import { parseArgs } from 'node:util'

/** Exit code of every CLI for bad arguments (unknown option, missing or malformed value). */
const EXIT_USAGE = 2

interface OptionSpec {
  type: 'string' | 'boolean'
  short?: string
  /** Shown in the help as `--name VALUE`. */
  value?: string
  description: string
}

export interface CliSpec {
  /** How it is started, e.g. `npm run reconcile --`. */
  command: string
  /** Positional arguments as shown in the usage line, e.g. `<userId>`. */
  positionals?: { name: string; description: string; required: boolean }[]
  summary: string
  options: Record<string, OptionSpec>
  exitCodes: [number, string][]
  /** Environment variables it reads (see the README's configuration table). */
  env?: string[]
}

export class UsageError extends Error {}

const HELP: OptionSpec = { type: 'boolean', short: 'h', description: 'print this help and exit 0' }

function helpText(spec: CliSpec): string {
  const options = { ...spec.options, help: HELP }
  const pos = (spec.positionals ?? []).map((p) => (p.required ? p.name : `[${p.name}]`)).join(' ')
  const rows = Object.entries(options).map(([name, o]) => [
    `${o.short ? `-${o.short}, ` : '    '}--${name}${o.value ? ` ${o.value}` : ''}`, o.description,
  ] as const)
  const width = Math.max(...rows.map(([l]) => l.length), ...(spec.positionals ?? []).map((p) => p.name.length + 2)) + 2
  const lines = [`usage: ${spec.command} ${pos ? `${pos} ` : ''}[options]`, '', spec.summary, '']
  if (spec.positionals?.length) {
    lines.push('arguments:')
    for (const p of spec.positionals) lines.push(`  ${p.name.padEnd(width)}${p.description}`)
    lines.push('')
  }
  lines.push('options:')
  for (const [l, d] of rows) lines.push(`  ${l.padEnd(width)}${d}`)
  lines.push('', 'exit codes:')
  for (const [code, meaning] of spec.exitCodes) lines.push(`  ${code}  ${meaning}`)
  if (spec.env?.length) lines.push('', `environment: ${spec.env.join(', ')}`)
  return lines.join('\n')
}

type Values<S extends CliSpec> = {
  [K in keyof S['options']]?: S['options'][K]['type'] extends 'boolean' ? boolean : string
}

/**
 * Parses argv strictly. `-h/--help` prints the help on stdout and exits 0 before anything else runs (no
 * config is read, no service touched); an unknown option or a bad value prints the problem on stderr and
 * exits EXIT_USAGE. `check` may throw UsageError for values parseArgs cannot judge.
 */
export function parseCli<S extends CliSpec>(spec: S, argv: string[] = process.argv.slice(2),
  check?: (values: Values<S>, positionals: string[]) => void): { values: Values<S>; positionals: string[] } {
  const options = Object.fromEntries(Object.entries({ ...spec.options, help: HELP }).map(([k, o]) => [k,
    { type: o.type, ...(o.short ? { short: o.short } : {}) }]))
  try {
    const { values, positionals } = parseArgs({ args: argv, options, strict: true,
      allowPositionals: (spec.positionals?.length ?? 0) > 0 })
    if (values.help) {
      process.stdout.write(`${helpText(spec)}\n`)
      process.exit(0)
    }
    const maxPos = spec.positionals?.length ?? 0
    const minPos = spec.positionals?.filter((p) => p.required).length ?? 0
    if (positionals.length > maxPos) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[maxPos])}`)
    if (positionals.length < minPos) throw new UsageError(`missing ${spec.positionals![positionals.length]!.name}`)
    check?.(values as Values<S>, positionals)
    return { values: values as Values<S>, positionals }
  } catch (err) {
    const code = (err as { code?: string }).code ?? ''
    if (!(err instanceof UsageError) && !code.startsWith('ERR_PARSE_ARGS')) throw err
    process.stderr.write(`${spec.command.replace(/ --$/, '')}: ${(err as Error).message}\nrun with --help for the options\n`)
    process.exit(EXIT_USAGE)
  }
}

/** An integer option value within bounds, or a UsageError naming the option. */
export function intOption(name: string, v: string | undefined, def: number, min: number,
  max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined) return def
  const n = Number(v)
  if (!Number.isInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `${min} or more` : `${min}..${max}`
    throw new UsageError(`--${name} must be an integer ${range} (got ${JSON.stringify(v)})`)
  }
  return n
}
