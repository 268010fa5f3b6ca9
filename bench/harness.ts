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

export interface Measured {
  readonly label: string
  /** median over rounds, wall clock */
  readonly opsPerSec: number
  /** median over rounds: CPU time of this process (all threads) per operation, in nanoseconds */
  readonly cpuNanosPerOp: number
}

export interface Result {
  readonly group: string
  readonly name: string
  readonly library: Measured
  readonly baselines: ReadonlyArray<
    Measured & {
      /** median over rounds of library ops/s / baseline ops/s (wall clock, same round) */
      readonly ratio: number
      /** smallest and largest per-round ratio */
      readonly ratioMin: number
      readonly ratioMax: number
      /**
       * median over rounds of baseline CPU per op / library CPU per op: the throughput ratio
       * when the client process is the bottleneck; barely disturbed by other processes
       */
      readonly cpuRatio: number
    }
  >
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

interface Sample {
  readonly opsPerSec: number
  readonly cpuNanosPerOp: number
}

/**
 * One sample. No forced GC before it: V8 ages code at each full GC and flushes the bytecode of functions that did
 * not run since, so forcing one before every sample made each sample re-warm its JIT (and measured mostly that).
 */
const timeOnce = async (run: Runner, ops: number): Promise<Sample> => {
  const cpu = process.cpuUsage()
  const start = process.hrtime.bigint()
  await run(ops)
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9
  const used = process.cpuUsage(cpu)
  return { opsPerSec: ops / elapsed, cpuNanosPerOp: ((used.user + used.system) * 1000) / ops }
}

/**
 * ops for one sample of about `sampleMillis`: grows the warm-up until one run takes a
 * noticeable time (so fixed costs, such as starting 256 fibers, and a cold JIT do not skew the
 * rate), then scales to the wanted duration
 */
const calibrate = async (side: Side, settings: Settings): Promise<number> => {
  let ops = settings.warmupOps
  for (;;) {
    const rate = (await timeOnce(side.run, ops)).opsPerSec
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
  // the garbage of the previous case is collected before this one warms up, not during its first samples
  gc()
  const sides = [c.library, ...c.baselines]
  const ops: Array<number> = []
  for (const side of sides) ops.push(await calibrate(side, settings))
  const samples: Array<Array<Sample>> = sides.map(() => [])
  for (let round = 0; round < settings.rounds; round++) {
    // rotate the order: A B C, B C A, C A B, …
    for (let k = 0; k < sides.length; k++) {
      const i = (round + k) % sides.length
      samples[i]!.push(await timeOnce(sides[i]!.run, ops[i]!))
    }
  }
  const measured = (label: string, xs: ReadonlyArray<Sample>): Measured => ({
    label,
    opsPerSec: median(xs.map((x) => x.opsPerSec)),
    cpuNanosPerOp: median(xs.map((x) => x.cpuNanosPerOp))
  })
  const lib = samples[0]!
  return {
    group: c.group,
    name: c.name,
    library: measured(c.library.label, lib),
    baselines: c.baselines.map((b, j) => {
      const base = samples[j + 1]!
      const ratios = lib.map((x, r) => x.opsPerSec / base[r]!.opsPerSec)
      return {
        ...measured(b.label, base),
        ratio: median(ratios),
        ratioMin: Math.min(...ratios),
        ratioMax: Math.max(...ratios),
        cpuRatio: median(lib.map((x, r) => base[r]!.cpuNanosPerOp / x.cpuNanosPerOp))
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

const fmtMicros = (nanos: number): string => (nanos / 1000).toFixed(nanos < 10_000 ? 2 : 1)

/** the results as a Markdown table (one line per library/baseline pair) */
export const toMarkdown = (results: ReadonlyArray<Result>): string => {
  const lines = [
    "| group | case | library ops/s | CPU µs/op | baseline | baseline ops/s | CPU µs/op | ratio (min–max) | CPU ratio | target |",
    "|---|---|---:|---:|---|---:|---:|---:|---:|---|"
  ]
  let group = ""
  for (const r of results) {
    r.baselines.forEach((b, j) => {
      const target =
        j === 0 && r.target !== undefined
          ? `≥ ${r.target.toFixed(2)}× ${b.ratio >= r.target ? "met" : "**missed**"}`
          : ""
      const first = j === 0
      lines.push(
        `| ${first && r.group !== group ? r.group : ""} | ${first ? r.name : ""} | ` +
          `${first ? fmtInt(r.library.opsPerSec) : ""} | ${first ? fmtMicros(r.library.cpuNanosPerOp) : ""} | ` +
          `${b.label} | ${fmtInt(b.opsPerSec)} | ${fmtMicros(b.cpuNanosPerOp)} | ` +
          `${fmtRatio(b.ratio)} (${b.ratioMin.toFixed(2)}–${b.ratioMax.toFixed(2)}) | ${fmtRatio(b.cpuRatio)} | ${target} |`
      )
      group = r.group
    })
  }
  return lines.join("\n")
}
