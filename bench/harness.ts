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

/**
 * Seconds of CPU (user + sys) the redis-server process has used so far (`INFO cpu`): read before
 * and after every sample of a Redis case, so each side's Redis cost per operation is measured in
 * the same interleaved rounds as its throughput.
 */
export type ServerCpu = () => Promise<number>

/** what the library must reach against one baseline (reported, never asserted) */
export interface Target {
  /** library ops/s / baseline ops/s (median of the per-round ratios) must be at least this */
  readonly ratio: number
  /** library Redis CPU per op / baseline Redis CPU per op (median of the per-round ratios) must be at most this */
  readonly redisCpu?: number | undefined
}

export interface Side {
  readonly label: string
  readonly run: Runner
  /** on a baseline: what the library must reach against it */
  readonly target?: Target | undefined
}

export interface Case {
  /** section of the table */
  readonly group: string
  /** what is measured */
  readonly name: string
  readonly library: Side
  readonly baselines: ReadonlyArray<Side>
  /** for a case against Redis: the server's CPU counter, read around every sample */
  readonly serverCpu?: ServerCpu | undefined
}

export interface Measured {
  readonly label: string
  /** median over rounds, wall clock */
  readonly opsPerSec: number
  /** median over rounds: CPU time of this process (all threads) per operation, in nanoseconds */
  readonly cpuNanosPerOp: number
  /** median over rounds: CPU time of redis-server (user + sys) per operation, in nanoseconds; Redis cases only */
  readonly redisNanosPerOp: number | undefined
}

export interface Compared extends Measured {
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
  /**
   * median over rounds of library Redis CPU per op / baseline Redis CPU per op (lower is
   * cheaper for Redis); Redis cases only
   */
  readonly redisCpuRatio: number | undefined
  readonly target: Target | undefined
  /** whether the target is met (undefined without a target) */
  readonly met: boolean | undefined
}

export interface Result {
  readonly group: string
  readonly name: string
  readonly library: Measured
  readonly baselines: ReadonlyArray<Compared>
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
  readonly redisNanosPerOp: number | undefined
}

/**
 * One sample. No forced GC before it: V8 ages code at each full GC and flushes the bytecode of functions that did
 * not run since, so forcing one before every sample made each sample re-warm its JIT (and measured mostly that).
 * The server's CPU counter is read outside the timed span; every operation of the sample has completed before the
 * second read, so the delta holds the sample's Redis work (and the two `INFO` replies, a few µs).
 */
const timeOnce = async (run: Runner, ops: number, serverCpu?: ServerCpu): Promise<Sample> => {
  const redisBefore = serverCpu === undefined ? 0 : await serverCpu()
  const cpu = process.cpuUsage()
  const start = process.hrtime.bigint()
  await run(ops)
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9
  const used = process.cpuUsage(cpu)
  const redisNanosPerOp = serverCpu === undefined ? undefined : (((await serverCpu()) - redisBefore) * 1e9) / ops
  return { opsPerSec: ops / elapsed, cpuNanosPerOp: ((used.user + used.system) * 1000) / ops, redisNanosPerOp }
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

const optionalMedian = (xs: ReadonlyArray<number | undefined>): number | undefined =>
  xs.every((x): x is number => x !== undefined) && xs.length > 0 ? median(xs) : undefined

const isMet = (target: Target | undefined, ratio: number, redisCpuRatio: number | undefined): boolean | undefined =>
  target === undefined
    ? undefined
    : ratio >= target.ratio &&
      (target.redisCpu === undefined || (redisCpuRatio !== undefined && redisCpuRatio <= target.redisCpu))

/** `onStep` hears what the case is doing ("calibrating", "round 3/11"), for a progress display */
export const runCase = async (c: Case, settings: Settings, onStep?: (step: string) => void): Promise<Result> => {
  // the garbage of the previous case is collected before this one warms up, not during its first samples
  gc()
  const sides = [c.library, ...c.baselines]
  const ops: Array<number> = []
  onStep?.("calibrating")
  for (const side of sides) ops.push(await calibrate(side, settings))
  const samples: Array<Array<Sample>> = sides.map(() => [])
  for (let round = 0; round < settings.rounds; round++) {
    onStep?.(`round ${round + 1}/${settings.rounds}`)
    // rotate the order: A B C, B C A, C A B, …
    for (let k = 0; k < sides.length; k++) {
      const i = (round + k) % sides.length
      samples[i]!.push(await timeOnce(sides[i]!.run, ops[i]!, c.serverCpu))
    }
  }
  const measured = (label: string, xs: ReadonlyArray<Sample>): Measured => ({
    label,
    opsPerSec: median(xs.map((x) => x.opsPerSec)),
    cpuNanosPerOp: median(xs.map((x) => x.cpuNanosPerOp)),
    redisNanosPerOp: optionalMedian(xs.map((x) => x.redisNanosPerOp))
  })
  const lib = samples[0]!
  return {
    group: c.group,
    name: c.name,
    library: measured(c.library.label, lib),
    baselines: c.baselines.map((b, j): Compared => {
      const base = samples[j + 1]!
      const ratios = lib.map((x, r) => x.opsPerSec / base[r]!.opsPerSec)
      const ratio = median(ratios)
      const redisCpuRatio = optionalMedian(
        lib.map((x, r) => {
          const theirs = base[r]!.redisNanosPerOp
          return x.redisNanosPerOp === undefined || theirs === undefined ? undefined : x.redisNanosPerOp / theirs
        })
      )
      return {
        ...measured(b.label, base),
        ratio,
        ratioMin: Math.min(...ratios),
        ratioMax: Math.max(...ratios),
        cpuRatio: median(lib.map((x, r) => base[r]!.cpuNanosPerOp / x.cpuNanosPerOp)),
        redisCpuRatio,
        target: b.target,
        met: isMet(b.target, ratio, redisCpuRatio)
      }
    }),
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

const fmtRatio = (r: number | undefined): string => (r === undefined ? "" : r.toFixed(2) + "×")

const fmtMicros = (nanos: number | undefined): string =>
  nanos === undefined ? "" : (nanos / 1000).toFixed(nanos < 10_000 ? 2 : 1)

const fmtTarget = (b: Compared): string => {
  const t = b.target
  if (t === undefined) return ""
  const wanted = `≥ ${t.ratio.toFixed(2)}×` + (t.redisCpu === undefined ? "" : `, Redis ≤ ${t.redisCpu.toFixed(2)}×`)
  if (b.met === true) return `${wanted} met`
  // the failing part with three digits: a ratio printed 0.97× may be under a 0.97× target
  const short = [
    b.ratio < t.ratio ? `ops/s ${b.ratio.toFixed(3)}×` : undefined,
    t.redisCpu !== undefined && !(b.redisCpuRatio !== undefined && b.redisCpuRatio <= t.redisCpu)
      ? `Redis ${b.redisCpuRatio?.toFixed(3) ?? "?"}×`
      : undefined
  ].filter((x) => x !== undefined)
  return `${wanted} **not met** (${short.join(", ")})`
}

/** the results as a Markdown table (one line per library/baseline pair) */
export const toMarkdown = (results: ReadonlyArray<Result>): string => {
  const lines = [
    "| group | case | library ops/s | CPU µs/op | Redis µs/op | baseline | baseline ops/s | CPU µs/op | Redis µs/op | " +
      "ops/s ratio (min–max) | CPU ratio | Redis CPU ratio | target |",
    "|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|"
  ]
  let group = ""
  for (const r of results) {
    r.baselines.forEach((b, j) => {
      const first = j === 0
      lines.push(
        `| ${first && r.group !== group ? r.group : ""} | ${first ? r.name : ""} | ` +
          `${first ? fmtInt(r.library.opsPerSec) : ""} | ${first ? fmtMicros(r.library.cpuNanosPerOp) : ""} | ` +
          `${first ? fmtMicros(r.library.redisNanosPerOp) : ""} | ` +
          `${b.label} | ${fmtInt(b.opsPerSec)} | ${fmtMicros(b.cpuNanosPerOp)} | ${fmtMicros(b.redisNanosPerOp)} | ` +
          `${fmtRatio(b.ratio)} (${b.ratioMin.toFixed(2)}–${b.ratioMax.toFixed(2)}) | ${fmtRatio(b.cpuRatio)} | ` +
          `${fmtRatio(b.redisCpuRatio)} | ${fmtTarget(b)} |`
      )
      group = r.group
    })
  }
  return lines.join("\n")
}

/** every row that carries a target, one line each, and how many are met */
export const targetSummary = (results: ReadonlyArray<Result>): string => {
  const rows = results.flatMap((r) =>
    r.baselines
      .filter((b) => b.target !== undefined)
      .map(
        (b) =>
          `| ${r.group} | ${r.name} | ${b.label} | ${fmtRatio(b.ratio)} | ${fmtRatio(b.redisCpuRatio)} | ` +
          `${fmtTarget(b)} |`
      )
  )
  const met = results.flatMap((r) => r.baselines).filter((b) => b.met === true).length
  return [
    `Targets met: ${met} of ${rows.length}.`,
    "",
    "| group | case | against | ops/s ratio | Redis CPU ratio | target |",
    "|---|---|---|---:|---:|---|",
    ...rows
  ].join("\n")
}
