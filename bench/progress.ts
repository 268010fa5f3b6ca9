/**
 * What a long run is doing, on stderr: the section (a heading line), the case (i of n, named by
 * its group of the table and its name), its step (calibrating, round r of R) and the time elapsed. On a terminal one status line is rewritten in place (and
 * its clock ticks every second); otherwise, as in CI logs, each case start and result is a plain
 * line. Results (the `done` lines) stay on screen either way.
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
  /** the run is over: clears the status line and stops its clock */
  readonly end: () => void
}

const clock = (millis: number): string => {
  const s = Math.floor(millis / 1000)
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`
}

/** progress of `total` cases, written to `stream` (stderr by default) */
export const makeProgress = (total: number, stream: NodeJS.WriteStream = process.stderr): Progress => {
  const tty = stream.isTTY === true
  const started = Date.now()
  let current = ""
  let index = 0
  let what = ""
  const status = () =>
    `[${clock(Date.now() - started)}] case ${index}/${total}${what === "" ? "" : ` · ${what}`}` +
    (current === "" ? "" : ` · ${current}`)
  const draw = () => {
    if (!tty || current === "") return
    const columns = (stream as WriteStream).columns ?? 100
    const text = status()
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
      if (tty) draw()
      else stream.write(status() + "\n")
    },
    step: (w) => {
      what = w
      draw()
    },
    line: persist,
    end: () => {
      if (ticker !== undefined) clearInterval(ticker)
      if (tty) stream.write("\r\x1b[2K")
    }
  }
}
