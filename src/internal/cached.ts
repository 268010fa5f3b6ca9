/**
 * The one constructor of a `Cached`: every result a store, the policy, a keyspace or getOrCompute returns is made
 * here, in one of two shapes (with or without the entry's age), so that `degraded` always follows `backend`.
 */
import * as Duration from "effect/Duration"
import type { Found } from "@effect-failclosed/core"
import type { Backend, Cached } from "../DistributedCache.js"

/** @internal */
export const makeCached = <A>(
  value: A,
  backend: Backend,
  near: boolean,
  stale: boolean,
  age: Duration.Duration | undefined
): Cached<A> =>
  age === undefined
    ? { value, backend, degraded: backend === "local_degraded", near, stale }
    : { value, backend, degraded: backend === "local_degraded", near, stale, age }

/** what the read pipeline found, as a `Cached` @internal */
export const cachedOf = <V>(found: Found<V, unknown>): Cached<V> =>
  makeCached(
    found.value,
    found.backend,
    found.near,
    found.stale,
    found.ageMillis === undefined ? undefined : Duration.millis(found.ageMillis)
  )
