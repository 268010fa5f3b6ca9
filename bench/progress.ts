/**
 * What a long run (`npm run bench`, `npm run chaos`, `npm run failover`) is doing, on stderr: the
 * section (a heading line), the case (i of n, by name), its step (calibrating, round r of R), the
 * time the case has taken and the time elapsed. On a terminal one status line is rewritten in place
 * (and its clock ticks every second); otherwise, as in CI logs, each case start is a plain line.
 * Result lines stay on screen either way, and the run ends with a line of its total time.
 */
import type { WriteStream } from "node:tty"

export interface Progress {
  /** a new section starts (its cases are counted in the total already): a heading line */
  readonly section: (name: string) => void
  /** the next case starts */
  readonly caseStarted: (name: string) => void
  /** what the current case is doing */
  readonly step: (what: string) => void
  /** a line that stays: a case's result, a note */
  readonly line: (text: string) => void
  /** the run is over: clears the status line, stops its clock and prints the total time */
  readonly end: () => void
}

export interface ProgressOptions {
  /** names the run in the status line and the final line (`chaos`, `failover`) */
  readonly name?: string
  readonly stream?: NodeJS.WriteStream
}

const clock = (millis: number): string => {
  const s = Math.floor(millis / 1000)
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`
}

const seconds = (millis: number) => `${(millis / 1000).toFixed(millis < 60_000 ? 1 : 0)} s`

/** progress of `total` cases, written to `options.stream` (stderr by default) */
export const makeProgress = (total: number, options: ProgressOptions = {}): Progress => {
  const stream = options.stream ?? process.stderr
  const prefix = options.name === undefined ? "" : `${options.name} `
  const tty = stream.isTTY === true
  const started = Date.now()
  let caseStart = started
  let current = ""
  let index = 0
  let what = ""
  // the status line also shows how long the case has run; a plain line is written as it starts
  const status = (caseTime: boolean) =>
    `${prefix}[${clock(Date.now() - started)}] case ${index}/${total}` +
    (current === "" ? "" : ` · ${current}${caseTime ? ` (${seconds(Date.now() - caseStart)})` : ""}`) +
    (what === "" ? "" : ` · ${what}`)
  const draw = () => {
    if (!tty || current === "") return
    const columns = (stream as WriteStream).columns ?? 100
    const text = status(true)
    stream.write("\r\x1b[2K" + (text.length > columns - 1 ? text.slice(0, columns - 2) + "…" : text))
  }
  const ticker = tty ? setInterval(draw, 1000) : undefined
  ticker?.unref()
  const persist = (text: string) => {
    stream.write((tty ? "\r\x1b[2K" : "") + text + "\n")
    draw()
  }
  return {
    section: (name) => {
      current = ""
      what = ""
      persist(name)
    },
    caseStarted: (name) => {
      index++
      current = name
      what = ""
      caseStart = Date.now()
      if (tty) draw()
      else stream.write(status(false) + "\n")
    },
    step: (w) => {
      what = w
      draw()
    },
    line: persist,
    end: () => {
      if (ticker !== undefined) clearInterval(ticker)
      if (tty) stream.write("\r\x1b[2K")
      stream.write(`${prefix}${index} of ${total} case(s) in ${seconds(Date.now() - started)}\n`)
    }
  }
}
