/** Progress on stderr while the bench runs: one line per step, a live counter while load runs. */
export interface Progress {
  step(msg: string): void
  tick(label: string, second: number, ofSeconds: number | null, rps: number): void
  done(): void
}

export const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US')

export function createProgress(out: NodeJS.WriteStream = process.stderr): Progress {
  const tty = Boolean(out.isTTY)
  let live = false
  const clear = () => { if (live) { out.write('\r\x1b[2K'); live = false } }
  return {
    step(msg) {
      clear()
      out.write(`${msg}\n`)
    },
    tick(label, second, ofSeconds, rps) {
      const line = `    ${label}: ${second}${ofSeconds ? `/${Math.ceil(ofSeconds)}` : ''} s, ${fmtInt(rps)} req/s`
      if (tty) {
        out.write(`\r\x1b[2K${line}`)
        live = true
      } else if (second % 5 === 0) out.write(`${line}\n`)
    },
    done: clear,
  }
}
