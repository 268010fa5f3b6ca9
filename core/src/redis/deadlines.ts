/**
 * The command deadlines of one store. Every call's deadline is its start plus the same command
 * timeout, so deadlines come in the order calls are made: one timer, armed for the oldest call
 * still pending, serves them all. (A timer per call, set and cleared, costs more than the rest
 * of a call's bookkeeping; here a call costs a clock read and an object.)
 *
 * A deadline is judged after the poll phase that follows it: the event loop runs due timers
 * before it reads the sockets, so after this process stood still (no CPU, a long GC) for as long
 * as the timeout, an answer that Redis sent in time would otherwise lose to the timer and a
 * healthy Redis would be taken for an unavailable one.
 */

/**
 * One call's deadline: settle it (set `settled`) when the call ends; `onDeadline` runs instead
 * if it has not by then.
 * @internal
 */
export interface Deadline {
  settled: boolean
  readonly at: number
  readonly onDeadline: () => void
}

/** pending deadlines kept before settled ones at the head are dropped from the array */
const COMPACT_AT = 1024

/** @internal */
export class Deadlines {
  /** slots before `head` are emptied: a settled call's closures must not outlive it */
  private queue: Array<Deadline | undefined> = []
  private head = 0
  private timer: ReturnType<typeof setTimeout> | undefined = undefined

  constructor(private readonly millis: number) {}

  /** a deadline `millis` from now for a call that has just been made */
  add(onDeadline: () => void): Deadline {
    const deadline: Deadline = { settled: false, at: performance.now() + this.millis, onDeadline }
    this.dropSettled()
    this.queue.push(deadline)
    if (this.timer === undefined) this.arm(this.millis)
    return deadline
  }

  /** the number of deadlines held (settled ones not dropped yet included) */
  get size(): number {
    return this.queue.length - this.head
  }

  private dropSettled(): void {
    const queue = this.queue
    while (this.head < queue.length && queue[this.head]!.settled) queue[this.head++] = undefined
    if (this.head === queue.length) {
      this.queue = []
      this.head = 0
    } else if (this.head >= COMPACT_AT && this.head * 2 >= queue.length) {
      this.queue = queue.slice(this.head)
      this.head = 0
    }
  }

  private arm(millis: number): void {
    this.timer = setTimeout(this.fire, Math.max(1, Math.ceil(millis)))
    // a pending call keeps the process alive by its socket; an idle store's timer must not
    this.timer.unref()
  }

  private readonly fire = (): void => {
    this.timer = undefined
    const now = performance.now()
    const expired: Array<Deadline> = []
    const queue = this.queue
    while (this.head < queue.length) {
      const deadline = queue[this.head]!
      if (!deadline.settled) {
        if (deadline.at > now) break
        expired.push(deadline)
      }
      queue[this.head++] = undefined
    }
    this.dropSettled()
    if (expired.length > 0) {
      // after the poll phase: replies already in the socket are read first and settle their calls
      setImmediate(() => {
        for (const deadline of expired) {
          if (deadline.settled) continue
          deadline.settled = true
          deadline.onDeadline()
        }
      })
    }
    if (this.head < this.queue.length) this.arm(this.queue[this.head]!.at - now)
  }
}
