/**
 * The names every mode and feature of the Effect 4 line shares: the mode names, the backend a result came from, and
 * the `Cached` result. The same names and shapes as `effect-failclosed` (the Effect 3 line).
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import * as Schema from "effect/Schema"

/**
 * The three modes, as a Schema (security events and errors carry one).
 *
 * @example
 * ```ts
 * import { CacheModeName } from "effect-failclosed-effect4"
 *
 * const mode: CacheModeName = "StrictDistributed"
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const CacheModeName = Schema.Literals(["StrictDistributed", "ExplicitDegraded", "LocalOnly"])

/**
 * @since 0.1.0
 * @category models
 */
export type CacheModeName = typeof CacheModeName.Type

/**
 * Where a result came from: `"redis"`, `"local"` (LocalOnly) or `"local_degraded"` (ExplicitDegraded's fallback).
 *
 * @example
 * ```ts
 * import type { Backend } from "effect-failclosed-effect4"
 *
 * const backend: Backend = "local_degraded"
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type Backend = "redis" | "local" | "local_degraded"

/**
 * A value with where it came from. `degraded` is true only for the node-local fallback of ExplicitDegraded.
 *
 * @example
 * ```ts
 * import type { Cached } from "effect-failclosed-effect4"
 *
 * const isTrusted = (cached: Cached<unknown>) => !cached.degraded
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Cached<A> {
  readonly value: A
  readonly backend: Backend
  readonly degraded: boolean
  /** true when the value came from this node's near cache */
  readonly near: boolean
  /** true only for a value past its time to live, served because the caller asked for it */
  readonly stale: boolean
  /** how long ago the entry was written, when the entry records it */
  readonly age?: Duration.Duration | undefined
}
