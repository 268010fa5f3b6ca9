/**
 * The cooldown after a failure. Closed: every call goes to Redis. Open: calls are refused at
 * once (strict) or served by the fallback (degraded) without touching Redis, until the
 * cooldown has elapsed; then exactly one call is admitted as the probe. A successful probe
 * closes the breaker; a failed one re-opens it for another cooldown.
 *
 * A generation counter makes transitions exact: a failure only opens the breaker when no
 * recovery happened since the failed call was admitted, so one outage gives one transition
 * even with hundreds of calls in flight.
 *
 * Time is `now`, the wrapper's clock (Effect's Clock, so TestClock drives the cooldown).
 */

/** @internal */
export const CLOSED = 0
/** @internal */
export const OPEN = 1
/** @internal */
export const PROBE = 2

/** @internal */
export type Admission = typeof CLOSED | typeof OPEN | typeof PROBE

/** @internal */
export class Breaker {
  /** true from the first failure until a successful call */
  isOpen = false
  generation = 0
  private openUntil = 0
  private probing = false

  constructor(
    private readonly now: () => number,
    private readonly cooldownMillis: number
  ) {}

  /** a new, closed breaker with the same clock and cooldown (one per failure domain) */
  sibling(): Breaker {
    return new Breaker(this.now, this.cooldownMillis)
  }

  admit(): Admission {
    if (!this.isOpen) return CLOSED
    if (this.probing || this.now() < this.openUntil) return OPEN
    this.probing = true
    return PROBE
  }

  /** opens for a cooldown; true when this is the transition from closed to open */
  failed(admittedGeneration: number, wasProbe: boolean): boolean {
    if (wasProbe) this.probing = false
    if (admittedGeneration !== this.generation) return false
    const transition = !this.isOpen
    if (transition || wasProbe) {
      this.isOpen = true
      this.openUntil = this.now() + this.cooldownMillis
    }
    return transition
  }

  /**
   * A probe answered: closes; true when this is the transition from open to closed. Only a
   * probe closes the breaker: a call admitted before the outage that answers late proves
   * nothing about now.
   */
  probeSucceeded(): boolean {
    this.probing = false
    if (!this.isOpen) return false
    this.isOpen = false
    this.generation++
    return true
  }

  /** the probe's fiber was interrupted: let the next call probe */
  probeAbandoned(): void {
    this.probing = false
  }

  /** opens without a transition event (the startup failure has its own event) */
  openAtStartup(): void {
    this.isOpen = true
    this.openUntil = this.now() + this.cooldownMillis
  }
}

/**
 * One breaker per failure domain of a store (its `domainOf`: a Redis Cluster shard's slot range). The whole-store
 * breaker (domain `""`) gates every domain while it is open: a store without domains has only that one.
 * @internal
 */
export class BreakerDomains {
  private readonly byDomain = new Map<string, Breaker>()
  constructor(readonly whole: Breaker) {}

  /** the breaker of `domain` (made, closed, on first use) */
  of(domain: string): Breaker {
    if (domain === "") return this.whole
    let breaker = this.byDomain.get(domain)
    if (breaker === undefined) {
      breaker = this.whole.sibling()
      this.byDomain.set(domain, breaker)
    }
    return breaker
  }

  /** true while any breaker is open */
  get anyOpen(): boolean {
    if (this.whole.isOpen) return true
    for (const breaker of this.byDomain.values()) if (breaker.isOpen) return true
    return false
  }

  /** each breaker's state, for a health check: the whole store's (`all`), then each domain's that served traffic */
  states(): Array<{ readonly domain: string; readonly open: boolean }> {
    const states = [{ domain: "all", open: this.whole.isOpen }]
    for (const [domain, breaker] of this.byDomain) states.push({ domain, open: breaker.isOpen })
    return states
  }
}
