/**
 * One timer for every command deadline of a store: a call that has not settled by its deadline is told so, never
 * earlier, and a settled one never.
 */
import { describe, expect, it } from "vitest"
import { Deadlines } from "../src/index.js"

const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

describe("deadlines", () => {
  it("an unsettled call is told at its own deadline, not before; a settled one is never told", async () => {
    const deadlines = new Deadlines(60)
    const told: Array<{ readonly name: string; readonly after: number }> = []
    const start = performance.now()
    const add = (name: string) => {
      const made = performance.now()
      return deadlines.add(() => told.push({ name, after: performance.now() - made }))
    }
    const a = add("a")
    add("b")
    await sleep(25)
    add("c")
    const d = add("d")
    a.settled = true
    d.settled = true
    await sleep(150)
    expect(told.map((t) => t.name)).toEqual(["b", "c"])
    for (const t of told) expect(t.after).toBeGreaterThanOrEqual(59)
    // c started 25 ms after b and was told at its own deadline, not at b's
    expect(performance.now() - start).toBeGreaterThan(85)
    expect(deadlines.size).toBe(0)
  })

  it("a call settled by its deadline's callback is settled once", async () => {
    const deadlines = new Deadlines(10)
    let told = 0
    const pending = deadlines.add(() => told++)
    await sleep(40)
    expect(told).toBe(1)
    expect(pending.settled).toBe(true)
  })

  it("settled calls do not pile up: 100,000 calls settled as they go leave nothing behind", () => {
    const deadlines = new Deadlines(60_000)
    for (let i = 0; i < 100_000; i++) deadlines.add(() => {}).settled = true
    expect(deadlines.size).toBeLessThanOrEqual(1)
  })

  it("calls that settle out of order are dropped once those before them have settled", () => {
    const deadlines = new Deadlines(60_000)
    const first = deadlines.add(() => {})
    const rest = Array.from({ length: 5_000 }, () => deadlines.add(() => {}))
    for (const r of rest) r.settled = true
    deadlines.add(() => {}).settled = true
    expect(deadlines.size).toBe(5_002)
    first.settled = true
    deadlines.add(() => {}).settled = true
    expect(deadlines.size).toBeLessThanOrEqual(1)
  })
})
