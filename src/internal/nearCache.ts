/**
 * The near cache of one keyspace, bound to the Effect package: its counters are this package's Metrics, its
 * background refill the cache service's read (admitted by its breaker), its clock `performance.now`. The mechanism
 * (entries, tickets, the own-write rule, pause and loss) is the core's `NearCache` (`@effect-failclosed/core`).
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import * as MetricKey from "effect/MetricKey"
import * as MetricLabel from "effect/MetricLabel"
import { NearCache as CoreNearCache, type NearSettings } from "@effect-failclosed/core"
import type { Tracking } from "./redis/tracking.js"
/** @internal */
export const NEAR_HITS = MetricKey.counter("effect_failclosed_near_hits", {
  description: "Keyspace reads answered from the node's near cache (no Redis round trip)",
  incremental: true
})
/** @internal */
export const NEAR_MISSES = MetricKey.counter("effect_failclosed_near_misses", {
  description: "Keyspace reads of a near-cache keyspace that went to Redis",
  incremental: true
})
/** @internal */
export const NEAR_EVICTIONS = MetricKey.counter("effect_failclosed_near_evictions", {
  description: "Near-cache entries removed by an invalidation, expiry or the capacity bound",
  incremental: true
})
/** @internal */
export const NEAR_FLUSHES = MetricKey.counter("effect_failclosed_near_flushes", {
  description:
    "Near caches emptied at once: a flush, or coherence was lost (connection closed or replaced, tracking re-enabled, restart, failover, new masters)",
  incremental: true
})

const counterOf = (key: MetricKey.MetricKey.Counter<number>, keyspace: string) => {
  const metric = Metric.fromMetricKey(MetricKey.taggedWithLabels(key, [MetricLabel.make("keyspace", keyspace)]))
  return (): void => metric.unsafeUpdate(1, [])
}

/**
 * A plain read of one key for a background refill: what Redis holds (null: nothing), or undefined when Redis did not
 * answer it (an open breaker, a failure). Given by the cache service, whose breaker admits it (internal/policy).
 * @internal
 */
export type RefillRead = (key: string) => Effect.Effect<string | null | undefined, unknown>

/**
 * The near cache of one keyspace on one cache: made by the cache service (`DistributedCacheService.nearCache`), used
 * by the read pipeline through the core's `Near` interface.
 * @internal
 */
export class NearCache<T = unknown> extends CoreNearCache<T> {
  constructor(tracking: Tracking, settings: NearSettings, read: RefillRead) {
    const { keyspace } = settings
    super(
      tracking,
      settings,
      (key, done) => {
        Effect.runCallback(read(key), { onExit: (exit) => done(Exit.isSuccess(exit) ? exit.value : undefined) })
      },
      {
        hit: counterOf(NEAR_HITS, keyspace),
        miss: counterOf(NEAR_MISSES, keyspace),
        evicted: counterOf(NEAR_EVICTIONS, keyspace),
        flushed: counterOf(NEAR_FLUSHES, keyspace)
      },
      // the native clock itself: no frame of this package between a near hit and its clock read
      performance.now.bind(performance)
    )
  }
}
