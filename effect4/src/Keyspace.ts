/**
 * A typed view of the cache: keys and values are Schemas (Effect 4's). Keys are canonical-JSON encoded and hashed by
 * the core's key codec (the same key as an Effect 3 node writes for the same keyspace, tenant and key), values are
 * Schema-encoded to JSON. The same names and options as `effect-failclosed`'s `Keyspace`.
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Schema from "effect/Schema"
import type { Cached, DistributedCache } from "./DistributedCache.js"
import type { CacheBackendUnavailable, CacheEntryInvalid, CacheValueInvalid } from "./errors.js"
import * as internal from "./internal/keyspace.js"

/**
 * The options of {@link make}.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import type { Keyspace } from "effect-failclosed-effect4"
 *
 * const options: Keyspace.KeyspaceOptions<{ readonly id: number }, { readonly id: number }, string, string> = {
 *   name: "profiles",
 *   key: Schema.Struct({ id: Schema.Number }),
 *   value: Schema.String,
 *   timeToLive: "1 minute"
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface KeyspaceOptions<K, KI, V, VI> {
  /** the keyspace's name: part of every key (nodes of both Effect lines that share a name share entries) */
  readonly name: string
  readonly key: Schema.Codec<K, KI>
  readonly value: Schema.Codec<V, VI>
  /** the default time to live of an entry (`Duration.infinity`: none) */
  readonly timeToLive: Duration.Input
  /** the largest encoded value, in UTF-8 bytes (default 1 MiB) */
  readonly maxValueBytes?: number | undefined
  /** the largest encoded key, in UTF-8 bytes (default 8 KiB) */
  readonly maxKeyBytes?: number | undefined
  /** the longest tenant id (default 256) */
  readonly maxTenantLength?: number | undefined
  /**
   * an in-process copy in front of Redis (Redis modes only), kept coherent by Redis' invalidations and served only
   * while the node proves it hears them; invalidations come from every node of either Effect line
   */
  readonly nearCache?: NearCacheOptions | undefined
}

/**
 * The options of a keyspace's near cache.
 *
 * @example
 * ```ts
 * import type { Keyspace } from "effect-failclosed-effect4"
 *
 * const near: Keyspace.NearCacheOptions = { capacity: 10_000, maxStaleness: "1 second" }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface NearCacheOptions {
  /** entries held (the least recently used go first) */
  readonly capacity: number
  /** the longest a near entry lives (default: the keyspace's time to live) */
  readonly timeToLive?: Duration.Input | undefined
  /** the longest the node may go without proof that it hears invalidations (default 1 second) */
  readonly maxStaleness?: Duration.Input | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface TenantOptions {
  readonly tenant?: string | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface SetOptions extends TenantOptions {
  readonly timeToLive?: Duration.Input | undefined
  /**
   * the entry's tags (at most 64 non-empty strings): `invalidateTag(tag, { tenant })` makes every entry of this
   * keyspace and tenant carrying one of them a miss on every node, of either Effect line (the core's tag stamps)
   */
  readonly tags?: ReadonlyArray<string> | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ClearOptions extends TenantOptions {
  /** clears every tenant's entries of this keyspace (and those written without one) */
  readonly allTenants?: boolean | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface GetOrComputeOptions<V> extends TenantOptions {
  readonly timeToLive?: Duration.Input | undefined
  /**
   * the computed entry's tags (see {@link SetOptions}), or a function of the computed value giving them
   * (`(user) => ["org:" + user.orgId]`)
   */
  readonly tags?: ReadonlyArray<string> | ((value: V) => ReadonlyArray<string>) | undefined
  /** false: the computed value is returned but not written */
  readonly shouldCache?: ((value: V) => boolean) | undefined
  /**
   * compute once across every node (of either Effect line): a Redis lock (`<entry key>~lock`); unavailable in
   * StrictDistributed → `CacheBackendUnavailable`, never a local lock
   */
  readonly lock?: boolean | undefined
  /** how long the lock is held at most, and how long a waiter waits before computing itself (default 5 seconds) */
  readonly lockTimeout?: Duration.Input | undefined
  /** past its time to live, a value is still served (marked `stale`) for this long while one refresh runs */
  readonly staleWhileRevalidate?: Duration.Input | undefined
  /** past its time to live, a value is served (marked `stale`) for this long when `compute` fails */
  readonly staleIfError?: Duration.Input | undefined
  /** with `staleIfError`: a compute slower than this serves the stale value instead */
  readonly computeTimeout?: Duration.Input | undefined
}

/**
 * A keyspace: typed get, set, invalidate, clear and getOrCompute on the `DistributedCache` of the context.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Keyspace, LocalOnly } from "effect-failclosed-effect4"
 *
 * const Profiles = Keyspace.make({
 *   name: "profiles",
 *   key: Schema.Struct({ id: Schema.Number }),
 *   value: Schema.Struct({ name: Schema.String }),
 *   timeToLive: "1 minute"
 * })
 * const program = Profiles.set({ id: 1 }, { name: "Ada" }).pipe(
 *   Effect.andThen(Profiles.get({ id: 1 })),
 *   Effect.provide(LocalOnly)
 * )
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Keyspace<K, V> {
  readonly name: string
  readonly get: (
    key: K,
    options?: TenantOptions
  ) => Effect.Effect<Option.Option<Cached<V>>, CacheBackendUnavailable | CacheEntryInvalid, DistributedCache>
  readonly set: (
    key: K,
    value: V,
    options?: SetOptions
  ) => Effect.Effect<void, CacheBackendUnavailable | CacheValueInvalid, DistributedCache>
  readonly invalidate: (
    key: K,
    options?: TenantOptions
  ) => Effect.Effect<boolean, CacheBackendUnavailable, DistributedCache>
  /**
   * Makes every entry of this keyspace and tenant carrying `tag` a miss on every node of either Effect line (near
   * caches included, within their `maxStaleness`); entries written afterwards with the tag are visible. One Redis
   * command. Fails closed in every Redis mode (`CacheBackendUnavailable`, ExplicitDegraded included). An invalid tag
   * or tenant id fails with `CacheValueInvalid`.
   */
  readonly invalidateTag: (
    tag: string,
    options?: TenantOptions
  ) => Effect.Effect<void, CacheBackendUnavailable | CacheValueInvalid, DistributedCache>
  readonly clear: (options?: ClearOptions) => Effect.Effect<number, CacheBackendUnavailable, DistributedCache>
  readonly getOrCompute: <E, R>(
    key: K,
    compute: Effect.Effect<V, E, R>,
    options?: GetOrComputeOptions<V>
  ) => Effect.Effect<Cached<V>, E | CacheBackendUnavailable | CacheValueInvalid, DistributedCache | R>
}

/**
 * Makes a keyspace. Invalid options are a programmer error: a synchronous `Error`.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Keyspace } from "effect-failclosed-effect4"
 *
 * const Sessions = Keyspace.make({ name: "sessions", key: Schema.String, value: Schema.Number, timeToLive: "5 minutes" })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: <K, KI, V, VI>(options: KeyspaceOptions<K, KI, V, VI>) => Keyspace<K, V> = internal.make
