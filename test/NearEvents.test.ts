/**
 * No log storms (issue 20): a flapping proof of coherence logs one event per transition with the count of the flaps
 * since the last event, at most one per second per keyspace. In memory, on the TestClock: the near cache's events
 * (core's NearEvents) read the time through a function, here the TestClock's; the read path logs each as one Warning
 * (internal/nearCache `transition`).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Logger, TestClock } from "effect"
import { type NearEvent, nearEventMessage, NearEvents } from "@effect-failclosed/core"

/** a NearEvents on the TestClock, and what its events logged (message and annotations) */
const setUp = Effect.gen(function* () {
  const clock = yield* Effect.clock
  const events = new NearEvents(() => clock.unsafeCurrentTimeMillis())
  const lines: Array<{ readonly message: string; readonly flaps: unknown; readonly at: number }> = []
  const logger = Logger.make(({ annotations, message }) => {
    const text = String(Array.isArray(message) ? message[0] : message)
    let flaps: unknown
    for (const [key, value] of annotations) if (key === "flaps") flaps = value
    lines.push({ message: text, flaps, at: clock.unsafeCurrentTimeMillis() })
  })
  /** what a read does: the event due now, logged */
  const read = Effect.suspend(() => {
    const event: NearEvent | undefined = events.take()
    return event === undefined
      ? Effect.void
      : Effect.annotateLogs(Effect.logWarning(nearEventMessage("profiles", event)), "flaps", event.flaps)
  }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
  return { events, lines, read }
})

describe("near cache events: no log storms", () => {
  it.effect("the first time the proof comes on is a start, not logged; a pause and its end are one line each", () =>
    Effect.gen(function* () {
      const { events, lines, read } = yield* setUp
      events.note("off", "tracking enabled on a new invalidation connection")
      yield* read
      events.note("on", "")
      yield* read
      expect(lines).toEqual([])
      yield* TestClock.adjust("5 seconds")
      events.note("paused", "no heartbeat answered within 300 ms")
      yield* read
      yield* TestClock.adjust("2 seconds")
      events.note("on", "")
      yield* read
      yield* read
      expect(lines.map((l) => l.message)).toEqual([
        'effect-failclosed: the near cache of keyspace "profiles" pauses its near hits (no heartbeat answered within 300 ms): its entries are kept; reads go to Redis until a heartbeat is answered',
        'effect-failclosed: the near cache of keyspace "profiles" serves again (coherence proven)'
      ])
      expect(lines.map((l) => l.flaps)).toEqual([0, 0])
    })
  )

  it.effect("a proof flapping every 50 ms for 5 s logs at most one line per second, with the flaps counted", () =>
    Effect.gen(function* () {
      const { events, lines, read } = yield* setUp
      events.note("on", "")
      yield* read
      let transitions = 0
      for (let i = 0; i < 50; i++) {
        events.note("paused", "no heartbeat answered within 300 ms")
        yield* read
        yield* TestClock.adjust("50 millis")
        events.note("on", "")
        yield* read
        yield* TestClock.adjust("50 millis")
        transitions += 2
      }
      // and it settles: the next read after a second logs where it ended
      yield* TestClock.adjust("1 second")
      yield* read
      yield* read
      expect(lines.length).toBeGreaterThanOrEqual(5)
      expect(lines.length).toBeLessThanOrEqual(6)
      for (let i = 1; i < lines.length; i++) expect(lines[i]!.at - lines[i - 1]!.at).toBeGreaterThanOrEqual(1_000)
      // every transition is in a line: its own, or counted in the next line's flaps
      const folded = lines.reduce((sum, l) => sum + (l.flaps as number), 0)
      expect(folded + lines.length).toBeGreaterThanOrEqual(transitions - lines.length)
      expect(folded).toBeGreaterThan(transitions / 2)
      expect(lines.at(-1)!.message).toMatch(
        /serves again \(coherence proven\) \(\d+ more transitions since the last event, emptied 0 times\)/
      )
    })
  )

  it.effect("an emptying while off is a transition: it is counted, and its reason logged when it is its own line", () =>
    Effect.gen(function* () {
      const { events, lines, read } = yield* setUp
      events.note("on", "")
      yield* read
      events.note("off", "the invalidation connection closed")
      yield* read
      events.note("off", "Redis restarted or failed over (its run_id changed)")
      yield* read
      yield* TestClock.adjust("1 second")
      yield* read
      expect(lines.map((l) => l.message)).toEqual([
        'effect-failclosed: the near cache of keyspace "profiles" is switched off and emptied (the invalidation connection closed); reads go to Redis',
        'effect-failclosed: the near cache of keyspace "profiles" is switched off and emptied (Redis restarted or failed over (its run_id changed)); reads go to Redis (1 more transition since the last event, emptied 1 time)'
      ])
    })
  )
})
