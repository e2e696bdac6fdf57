import cliProgress from 'cli-progress'

/** Where reconcile reports how far it got; a no-op unless a person is watching a terminal. */
export interface Progress {
  start(label: string, total: number): void
  add(n: number): void
  stop(): void
}

export const silentProgress: Progress = { start() {}, add() {}, stop() {} }

export function terminalProgress(stream: NodeJS.WriteStream = process.stderr): Progress {
  const bar = new cliProgress.SingleBar({
    stream,
    format: '{label} [{bar}] {percentage}% | {value}/{total}',
    hideCursor: true,
    clearOnComplete: true,
    etaBuffer: 50,
  }, cliProgress.Presets.shades_classic)
  let running = false
  return {
    start(label, total) {
      if (running) bar.stop()
      bar.start(Math.max(total, 1), 0, { label })
      running = true
    },
    add(n) { if (running) bar.increment(n) },
    stop() { if (running) bar.stop(); running = false },
  }
}
