/**
 * The event loop as seen by a timer that ticks every 2 ms. Two questions need it:
 *
 * - How late did timers fire at a given moment? An operation whose deadline timer is due at `D`
 *   cannot settle before the event loop runs timers again, at the first tick after `D`. Only that
 *   lateness is excused by the timing invariants, so a call that waits without a timer (or for a
 *   second timer) is still caught on a busy machine.
 * - Did the event loop turn at all between two moments? A call that is refused by the cooldown
 *   is synchronous: no tick can run inside it. A tick inside means the call waited for something.
 *
 * Stalls, intervals of at least `STALL_MILLIS` without a tick (the process had no CPU, a long
 * GC, a long synchronous section), are reported, and a stall of a good part of the command
 * timeout may cause an outage of its own: command timers fire before the answers are read.
 */
import { performance } from "node:perf_hooks"

const TICK_MILLIS = 2
const STALL_MILLIS = 20

export interface LoopWatch {
  readonly stop: () => void
  /** when the event loop first ran timers at or after `at` (`Infinity` if it had not by the end) */
  readonly firstTickAfter: (at: number) => number
  /** whether the event loop ran timers strictly between `from` and `to` */
  readonly turnedWithin: (from: number, to: number) => boolean
  /** milliseconds of stalls within [from, to] */
  readonly stalledWithin: (from: number, to: number) => number
  /** the stalls of at least `minMillis`, as [from, to] */
  readonly stallsOfAtLeast: (minMillis: number) => ReadonlyArray<readonly [number, number]>
  readonly longestStall: () => number
  readonly totalStalled: () => number
}

/** Starts ticking; `capacity` ticks are kept (preallocated, outside the JS heap). */
export const watchLoop = (capacity = 600_000): LoopWatch => {
  const ticks = new Float64Array(capacity)
  let n = 0
  const stallFrom: Array<number> = []
  const stallTo: Array<number> = []
  let last = performance.now()
  ticks[n++] = last
  const timer = setInterval(() => {
    const now = performance.now()
    if (now - last >= STALL_MILLIS) {
      stallFrom.push(last)
      stallTo.push(now)
    }
    if (n < capacity) ticks[n++] = now
    last = now
  }, TICK_MILLIS)

  /** index of the first tick >= at */
  const search = (at: number): number => {
    let lo = 0
    let hi = n
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (ticks[mid]! < at) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  return {
    stop: () => clearInterval(timer),
    firstTickAfter: (at) => {
      const i = search(at)
      return i < n ? ticks[i]! : Infinity
    },
    turnedWithin: (from, to) => {
      const i = search(from)
      // a tick exactly at `from` is the one that started this stretch of synchronous work
      const j = i < n && ticks[i] === from ? i + 1 : i
      return j < n && ticks[j]! < to
    },
    stalledWithin: (from, to) => {
      let stalled = 0
      for (let i = 0; i < stallFrom.length; i++) {
        const overlap = Math.min(to, stallTo[i]!) - Math.max(from, stallFrom[i]!)
        if (overlap > 0) stalled += overlap
      }
      return stalled
    },
    stallsOfAtLeast: (minMillis) =>
      stallFrom.flatMap((f, i) => (stallTo[i]! - f >= minMillis ? [[f, stallTo[i]!] as const] : [])),
    longestStall: () => stallFrom.reduce((m, f, i) => Math.max(m, stallTo[i]! - f), 0),
    totalStalled: () => stallFrom.reduce((m, f, i) => m + stallTo[i]! - f, 0)
  }
}
