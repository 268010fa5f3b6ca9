/**
 * What a near cache tells its operator about its proof of coherence, without a log storm.
 *
 * The proof has three states: `on` (near hits are served), `paused` (the proof is missing but nothing was lost: the
 * entries are kept, no near hit is served until a heartbeat sent after the lapse is answered) and `off` (coherence was
 * lost: the entries were emptied). A proof that flaps (a node whose event loop stalls again and again, a Redis at the
 * edge of its heartbeat) would log a line per transition; here each keyspace reports at most one event per
 * `intervalMillis` (1 second), the state it is in when the event is taken, with the number of transitions folded into
 * it since the last event. The first time the proof comes on is not reported (that is a start, not a transition).
 *
 * Time comes in as a function (milliseconds); events go out as plain data: the Effect package turns them into one
 * Logger event each.
 * @internal
 */

/** the states of a near cache's proof of coherence */
export type NearState = "on" | "paused" | "off"

/** one reported transition, with what was folded into it */
export interface NearEvent {
  /** the state now */
  readonly state: NearState
  /** the state last reported */
  readonly previous: NearState
  /** why the proof is missing or was lost (empty when `state` is "on") */
  readonly reason: string
  /** transitions since the last event besides the one this event reports (0: none) */
  readonly flaps: number
  /** how many of the transitions since the last event emptied the near cache */
  readonly emptied: number
}

/** @internal */
export class NearEvents {
  private state: NearState = "off"
  private reason = "not started"
  /** the state of the last event (undefined until the proof first came on) */
  private reported: NearState | undefined = undefined
  private reportedAt = -Infinity
  private transitions = 0
  private emptied = 0

  constructor(
    private readonly now: () => number,
    private readonly intervalMillis: number = 1_000
  ) {}

  /** the proof moved to `state` (a repeated state is no transition, but another emptying while off is one) */
  note(state: NearState, reason: string): void {
    if (state === "off") this.emptied++
    if (state === this.state && state !== "off") return
    this.state = state
    this.reason = reason
    this.transitions++
  }

  /** whether an event may be due (cheap: the read path asks it on every read) */
  get pending(): boolean {
    return this.transitions > 0
  }

  /** the event due now, if any: at most one per interval, none before the proof first came on */
  take(): NearEvent | undefined {
    if (this.transitions === 0) return undefined
    if (this.reported === undefined) {
      // starting: nothing to report until the proof is first on
      if (this.state === "on") this.reported = "on"
      this.transitions = 0
      this.emptied = 0
      return undefined
    }
    const now = this.now()
    if (now - this.reportedAt < this.intervalMillis) return undefined
    const event: NearEvent = {
      state: this.state,
      previous: this.reported,
      reason: this.state === "on" ? "" : this.reason,
      flaps: this.state === this.reported ? this.transitions : this.transitions - 1,
      emptied: this.emptied
    }
    this.reported = this.state
    this.reportedAt = now
    this.transitions = 0
    this.emptied = 0
    return event
  }
}

/**
 * The one line of a near-cache event, e.g. `the near cache of keyspace "profiles" pauses its near hits (no heartbeat
 * answered within 1000 ms): its entries are kept; reads go to Redis until a heartbeat is answered`.
 * @internal
 */
export const nearEventMessage = (keyspace: string, event: NearEvent): string => {
  const head = `effect-failclosed: the near cache of keyspace "${keyspace}"`
  const folded =
    event.flaps === 0
      ? ""
      : ` (${event.flaps} more transition${event.flaps === 1 ? "" : "s"} since the last event, emptied ${event.emptied} time${event.emptied === 1 ? "" : "s"})`
  switch (event.state) {
    case "on":
      return `${head} serves again (coherence proven)${folded}`
    case "paused":
      return `${head} pauses its near hits (${event.reason}): its entries are kept; reads go to Redis until a heartbeat is answered${folded}`
    case "off":
      return `${head} is switched off and emptied (${event.reason}); reads go to Redis${folded}`
  }
}
