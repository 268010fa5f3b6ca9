/**
 * The measuring loop shared by every benchmark: each case has a library side and one or more
 * baselines; every round runs all sides once (rotating their order, so no side always runs
 * first), and the reported figures are medians over rounds. Ratios are taken per round
 * (library / baseline of the same round) and then the median is reported, so slow drifts of a
 * shared machine cancel out. Nothing here asserts a wall-clock time.
 */
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"

/** true when BENCH_QUICK is set: fewer rounds, shorter samples */
export const QUICK = process.env["BENCH_QUICK"] !== undefined && process.env["BENCH_QUICK"] !== "0"

/** a full garbage collection, so one side does not pay for another side's garbage */
export const gc: () => void = (() => {
  const exposed = (globalThis as { gc?: () => void }).gc
  if (typeof exposed === "function") return exposed
  setFlagsFromString("--expose-gc")
  return runInNewContext("gc") as () => void
})()

/** runs `ops` operations; resolves when all have completed */
export type Runner = (ops: number) => Promise<void>

export interface Side {
  readonly label: string
  readonly run: Runner
}

export interface Case {
  /** section of the table */
  readonly group: string
  /** what is measured */
  readonly name: string
  readonly library: Side
  /** the first baseline is the "raw counterpart" the target refers to */
  readonly baselines: ReadonlyArray<Side>
  /** the ratio library / first baseline must reach (reported, never asserted) */
  readonly target?: number | undefined
}

export interface Result {
  readonly group: string
  readonly name: string
  readonly library: { readonly label: string; readonly opsPerSec: number }
  readonly baselines: ReadonlyArray<{
    readonly label: string
    readonly opsPerSec: number
    /** median over rounds of library / this baseline */
    readonly ratio: number
    /** smallest and largest per-round ratio */
    readonly ratioMin: number
    readonly ratioMax: number
  }>
  readonly target: number | undefined
  readonly rounds: number
}

export interface Settings {
  readonly rounds: number
  /** wanted duration of one sample */
  readonly sampleMillis: number
  /** ops of the first warm-up sample, used to calibrate */
  readonly warmupOps: number
}

export const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

const timeOnce = async (run: Runner, ops: number): Promise<number> => {
  gc()
  const start = process.hrtime.bigint()
  await run(ops)
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9
  return ops / elapsed
}

/**
 * ops for one sample of about `sampleMillis`: grows the warm-up until one run takes a
 * noticeable time (so fixed costs, such as starting 256 fibers, and a cold JIT do not skew the
 * rate), then scales to the wanted duration
 */
const calibrate = async (side: Side, settings: Settings): Promise<number> => {
  let ops = settings.warmupOps
  for (;;) {
    const rate = await timeOnce(side.run, ops)
    const millis = (ops / rate) * 1000
    if (millis >= settings.sampleMillis / 3) {
      const wanted = Math.max(settings.warmupOps, Math.round((rate * settings.sampleMillis) / 1000))
      // one more run at the final size lets the JIT settle on the real loop
      await timeOnce(side.run, wanted)
      return wanted
    }
    ops *= millis * 8 < settings.sampleMillis ? 8 : 3
  }
}

export const runCase = async (c: Case, settings: Settings): Promise<Result> => {
  const sides = [c.library, ...c.baselines]
  const ops: Array<number> = []
  for (const side of sides) ops.push(await calibrate(side, settings))
  const rates: Array<Array<number>> = sides.map(() => [])
  for (let round = 0; round < settings.rounds; round++) {
    // rotate the order: A B C, B C A, C A B, …
    for (let k = 0; k < sides.length; k++) {
      const i = (round + k) % sides.length
      rates[i]!.push(await timeOnce(sides[i]!.run, ops[i]!))
    }
  }
  const lib = rates[0]!
  return {
    group: c.group,
    name: c.name,
    library: { label: c.library.label, opsPerSec: median(lib) },
    baselines: c.baselines.map((b, j) => {
      const base = rates[j + 1]!
      const ratios = lib.map((x, r) => x / base[r]!)
      return {
        label: b.label,
        opsPerSec: median(base),
        ratio: median(ratios),
        ratioMin: Math.min(...ratios),
        ratioMax: Math.max(...ratios)
      }
    }),
    target: c.target,
    rounds: settings.rounds
  }
}

/** runs `body(i)` for i in [0, ops) with `inFlight` workers, each awaiting its previous operation */
export const promiseWorkers = (inFlight: number, body: (i: number) => Promise<unknown>): Runner => {
  if (inFlight === 1) {
    return async (ops) => {
      for (let i = 0; i < ops; i++) await body(i)
    }
  }
  return async (ops) => {
    let next = 0
    const worker = async () => {
      while (next < ops) await body(next++)
    }
    const workers: Array<Promise<void>> = []
    for (let w = 0; w < inFlight; w++) workers.push(worker())
    await Promise.all(workers)
  }
}

const fmtInt = (n: number): string => Math.round(n).toLocaleString("en-US")

const fmtRatio = (r: number): string => r.toFixed(2) + "×"

/** the results as a Markdown table (one line per library/baseline pair) */
export const toMarkdown = (results: ReadonlyArray<Result>): string => {
  const lines = [
    "| group | case | library ops/s | baseline | baseline ops/s | ratio (min–max) | target |",
    "|---|---|---:|---|---:|---:|---|"
  ]
  for (const r of results) {
    r.baselines.forEach((b, j) => {
      const target =
        j === 0 && r.target !== undefined
          ? `≥ ${r.target.toFixed(2)}× ${b.ratio >= r.target ? "met" : "**missed**"}`
          : ""
      lines.push(
        `| ${j === 0 ? r.group : ""} | ${j === 0 ? r.name : ""} | ${j === 0 ? fmtInt(r.library.opsPerSec) : ""} | ` +
          `${b.label} | ${fmtInt(b.opsPerSec)} | ${fmtRatio(b.ratio)} (${b.ratioMin.toFixed(2)}–${b.ratioMax.toFixed(2)}) | ${target} |`
      )
    })
  }
  return lines.join("\n")
}
