/**
 * Progress of a long run (`npm run chaos`, `npm run failover`) on stderr: which step runs, i of n,
 * and the time elapsed. On a terminal it is one line, redrawn every second; otherwise (a pipe, a CI
 * log) one plain line per step, so logs stay readable.
 */
import { performance } from "node:perf_hooks"

export interface RunProgress {
  /** the next step starts */
  readonly step: (label: string) => void
  /** a line of results, printed above the progress line */
  readonly log: (line: string) => void
  /** the run is over: clears the progress line */
  readonly done: () => void
}

const seconds = (millis: number) => `${(millis / 1000).toFixed(millis < 60_000 ? 1 : 0)} s`

export const runProgress = (name: string, total: number, stream: NodeJS.WriteStream = process.stderr): RunProgress => {
  const tty = stream.isTTY === true
  const started = performance.now()
  let index = 0
  let label = ""
  let stepStarted = started
  const status = () =>
    `${name} [${index}/${total}] ${label} · ${seconds(performance.now() - stepStarted)} ` +
    `(total ${seconds(performance.now() - started)})`
  const draw = () => {
    if (tty && index > 0) stream.write(`\r\x1b[2K${status().slice(0, Math.max(20, (stream.columns || 120) - 1))}`)
  }
  const clear = () => {
    if (tty) stream.write("\r\x1b[2K")
  }
  const timer = tty ? setInterval(draw, 1_000) : undefined
  timer?.unref()
  return {
    step: (next) => {
      index++
      label = next
      stepStarted = performance.now()
      if (tty) draw()
      else stream.write(`${name} [${index}/${total}] ${label} (${seconds(stepStarted - started)} elapsed)\n`)
    },
    log: (line) => {
      clear()
      stream.write(`${line}\n`)
      draw()
    },
    done: () => {
      if (timer !== undefined) clearInterval(timer)
      clear()
      stream.write(`${name}: ${total} step(s) in ${seconds(performance.now() - started)}\n`)
    }
  }
}
