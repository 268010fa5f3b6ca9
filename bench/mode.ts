/**
 * Where the time goes:
 *
 * - mode overhead, on one shared client (`RedisClient.make` with its defaults, so connections
 *   cannot differ): the StrictDistributed service (`makeStrict`: breaker admission, failure
 *   classification) against the same store with the breaker bypassed (a service that only maps
 *   the store's failure to `CacheBackendUnavailable` and its reply to `Cached`);
 * - layers of one `get (hit)`: raw ioredis (a client of its own, as users get it: default options
 *   sequentially, auto-pipelined with 256 in flight), then on the shared client the Redis store (an
 *   Effect), the StrictDistributed service, the Keyspace (key derivation, Schema decoding). The
 *   lower layers read precomputed store keys, so the last step also shows the cost of deriving a key.
 *
 * Built from the internals that `strictDistributed()` composes; nothing in src is changed.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import { type Cached, DistributedCache, type DistributedCacheService } from "../src/DistributedCache.js"
import { CacheBackendUnavailable } from "../src/errors.js"
import { Breaker, canonicalJson, hashCanonical, keyspaceHead, NO_TENANT_SEGMENT } from "@effect-failclosed/core"
import { makeStrict } from "../src/internal/policy.js"
import type { StoreFailure } from "@effect-failclosed/core"
import { redisEffects, redisStoreOf, type Store } from "../src/internal/store.js"
import { RedisClient } from "../src/RedisClient.js"
import {
  COMMAND_TIMEOUT,
  concurrency,
  effectWorkers,
  hitId,
  KEYS,
  rawClient,
  rawKey,
  rawKindFor,
  TTL_MILLIS,
  users,
  Users,
  waitReady
} from "./fixtures.js"
import { type Case, promiseWorkers, type Runner, type ServerCpu, type Target } from "./harness.js"

/** the mode's cost: within 3 % of the bypassed breaker */
const OVERHEAD_TARGET: Target = { ratio: 0.97 }

const KEY_PREFIX = "fc"

/** the DistributedCache service of StrictDistributed without its breaker */
const bypassed = (store: Store): DistributedCacheService => {
  const counters = { hits: 0, misses: 0 }
  const unavailable = (operation: string) => (f: StoreFailure) =>
    new CacheBackendUnavailable({ mode: "StrictDistributed", operation, reason: f.reason })
  const miss: Cached<undefined> = { value: undefined, backend: "redis", degraded: false, near: false, stale: false }
  const read = (v: string | null): Cached<string | undefined> => {
    if (v === null) {
      counters.misses++
      return miss
    }
    counters.hits++
    return { value: v, backend: "redis", degraded: false, near: false, stale: false }
  }
  const written = (value: void): Cached<void> => ({
    value,
    backend: "redis",
    degraded: false,
    near: false,
    stale: false
  })
  const identity = <A>(a: A) => a
  const onFailure = {
    get: unavailable("get"),
    set: unavailable("set"),
    invalidate: unavailable("invalidate"),
    clear: unavailable("clear"),
    count: unavailable("count"),
    claim: unavailable("claim"),
    rateLimit: unavailable("rateLimit")
  }
  return {
    mode: "StrictDistributed",
    keyPrefix: KEY_PREFIX,
    stats: Effect.dieMessage("not measured"),
    health: Effect.dieMessage("not measured"),
    get: (key) => Effect.mapBoth(store.get(key), { onFailure: onFailure.get, onSuccess: read }),
    set: (key, value, ttl) =>
      Effect.mapBoth(store.set(key, value, ttl), { onFailure: onFailure.set, onSuccess: written }),
    invalidate: (key) =>
      Effect.mapBoth(store.invalidate(key), { onFailure: onFailure.invalidate, onSuccess: identity }),
    clear: (prefix) => Effect.mapBoth(store.clear(prefix), { onFailure: onFailure.clear, onSuccess: identity }),
    count: (prefix) => Effect.mapBoth(store.count(prefix), { onFailure: onFailure.count, onSuccess: identity }),
    claim: (key, ttl) =>
      Effect.mapBoth(store.claim(key, ttl), {
        onFailure: onFailure.claim,
        onSuccess: (value) => ({ value, backend: "redis", degraded: false, near: false, stale: false })
      }),
    rateLimit: (request) =>
      Effect.mapBoth(store.rateLimit(request), {
        onFailure: onFailure.rateLimit,
        onSuccess: (value) => ({ value, backend: "redis", degraded: false, near: false, stale: false })
      }),
    getMany: () => Effect.dieMessage("not measured"),
    setMany: () => Effect.dieMessage("not measured"),
    acquireLock: () => Effect.dieMessage("not measured"),
    releaseLock: () => Effect.dieMessage("not measured")
  }
}

export const modeCases = async (
  url: string,
  serverCpu: ServerCpu
): Promise<{ cases: ReadonlyArray<Case>; close: () => Promise<void> }> => {
  const scope = Effect.runSync(Scope.make())
  const raw = { default: rawClient(url, "default"), "auto-pipelined": rawClient(url, "auto-pipelined") }
  Effect.runSync(
    Scope.addFinalizer(
      scope,
      Effect.sync(() => {
        raw.default.disconnect()
        raw["auto-pipelined"].disconnect()
      })
    )
  )
  await Promise.all([waitReady(raw.default), waitReady(raw["auto-pipelined"])])
  const redis = await Effect.runPromise(
    Scope.extend(RedisClient.make({ url, commandTimeout: COMMAND_TIMEOUT }), scope).pipe(
      Effect.tap((r) => r.awaitReady(r.startupTimeout))
    )
  )
  const clock = Effect.runSync(Effect.clock)
  const store = redisEffects(redisStoreOf(redis))
  const strict = makeStrict({
    store,
    breaker: new Breaker(() => clock.unsafeCurrentTimeMillis(), 500),
    keyPrefix: KEY_PREFIX
  })
  const bypass = bypassed(store)
  const client = redis.client

  const keyPrefix = keyspaceHead(KEY_PREFIX, Users.name) + NO_TENANT_SEGMENT + ":"
  const storeKeys = Array.from({ length: KEYS }, (_, id) => keyPrefix + hashCanonical(canonicalJson({ id })))

  const over =
    (service: DistributedCacheService) =>
    (e: Effect.Effect<void, unknown, DistributedCache>): Promise<void> =>
      Effect.runPromise(Effect.provideService(e, DistributedCache, service))
  const plain = (e: Effect.Effect<void, unknown>) => Effect.runPromise(e)

  // fill the hit set of both the keyspace and the raw keys
  await effectWorkers(64, (i) => Users.set({ id: hitId(i) }, users[hitId(i)]!), over(strict))(KEYS)
  await promiseWorkers(64, (i) => client.set(rawKey(hitId(i)), JSON.stringify(users[hitId(i)]), "PX", TTL_MILLIS))(KEYS)
  if (storeKeys[0] !== undefined && (await client.get(storeKeys[0])) === null) {
    throw new Error("bench: the precomputed store key does not match the Keyspace's key layout")
  }

  const parse = (s: string | null | undefined) => (s == null ? undefined : (JSON.parse(s) as unknown))
  const cases: Array<Case> = []
  for (const inFlight of [1, 256]) {
    const label = concurrency(inFlight)
    const kind = rawKindFor(inFlight)
    const group = `Mode overhead (one client), ${label}`
    const ks = (
      service: DistributedCacheService,
      body: (i: number) => Effect.Effect<unknown, unknown, DistributedCache>
    ) => effectWorkers(inFlight, body, over(service))
    const bypassedSide = (run: Runner) => ({ label: "breaker bypassed", run, target: OVERHEAD_TARGET })
    cases.push(
      {
        group,
        name: "Keyspace get (hit)",
        library: { label: "StrictDistributed", run: ks(strict, (i) => Users.get({ id: hitId(i) })) },
        baselines: [bypassedSide(ks(bypass, (i) => Users.get({ id: hitId(i) })))],
        serverCpu
      },
      {
        group,
        name: "Keyspace set",
        library: { label: "StrictDistributed", run: ks(strict, (i) => Users.set({ id: hitId(i) }, users[hitId(i)]!)) },
        baselines: [bypassedSide(ks(bypass, (i) => Users.set({ id: hitId(i) }, users[hitId(i)]!)))],
        serverCpu
      },
      {
        group,
        name: "DistributedCache.get (hit)",
        library: {
          label: "StrictDistributed",
          run: effectWorkers(inFlight, (i) => strict.get(storeKeys[hitId(i)]!), plain)
        },
        baselines: [bypassedSide(effectWorkers(inFlight, (i) => bypass.get(storeKeys[hitId(i)]!), plain))],
        serverCpu
      }
    )
    const rawGet = raw[kind]
    const layers: Array<{ label: string; run: Runner }> = [
      {
        label: `raw ioredis ${kind} (+ JSON.parse)`,
        run: promiseWorkers(inFlight, async (i) => parse(await rawGet.get(rawKey(hitId(i)))))
      },
      {
        label: "Redis store, an Effect (+ JSON.parse)",
        run: effectWorkers(inFlight, (i) => Effect.map(store.get(storeKeys[hitId(i)]!), parse), plain)
      },
      {
        label: "StrictDistributed service (+ JSON.parse)",
        run: effectWorkers(inFlight, (i) => Effect.map(strict.get(storeKeys[hitId(i)]!), (c) => parse(c.value)), plain)
      }
    ]
    cases.push({
      group: `Layers of get (hit), ${label}`,
      name: "Keyspace get (hit)",
      library: { label: "Keyspace over StrictDistributed", run: ks(strict, (i) => Users.get({ id: hitId(i) })) },
      baselines: layers,
      serverCpu
    })
  }
  return {
    cases,
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}
