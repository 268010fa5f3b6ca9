/**
 * The sub-path entry points are the same modules as the root's namespaces and names, so code may
 * move from `import { RateLimiter } from "effect-failclosed"` (deprecated for the three names that
 * clash with Effect's) to `import * as RateLimiter from "effect-failclosed/RateLimiter"` without
 * any change in behaviour or identity (a Context tag or an error class is the same value).
 */
import { describe, expect, it } from "@effect/vitest"
import * as Root from "effect-failclosed"
import * as CacheMode from "effect-failclosed/CacheMode"
import * as DistributedCache from "effect-failclosed/DistributedCache"
import * as HttpMiddleware from "effect-failclosed/HttpMiddleware"
import * as KeyLayout from "effect-failclosed/KeyLayout"
import * as Keyspace from "effect-failclosed/Keyspace"
import * as KeyValueStore from "effect-failclosed/KeyValueStore"
import * as Observability from "effect-failclosed/Observability"
import * as RateLimiter from "effect-failclosed/RateLimiter"
import * as RedisClient from "effect-failclosed/RedisClient"
import * as ReplayGuard from "effect-failclosed/ReplayGuard"
import * as SecurityEvent from "effect-failclosed/SecurityEvent"
import * as TestCache from "effect-failclosed/TestCache"

const namespaced = {
  HttpMiddleware,
  KeyLayout,
  Keyspace,
  KeyValueStore,
  Observability,
  RateLimiter,
  ReplayGuard,
  TestCache
}

describe("sub-path exports", () => {
  it.each(Object.keys(namespaced))("effect-failclosed/%s is the root namespace of the same name", (name) => {
    const subpath = namespaced[name as keyof typeof namespaced] as Record<string, unknown>
    const root = Root[name as keyof typeof Root] as Record<string, unknown>
    expect(Object.keys(subpath).length).toBeGreaterThan(0)
    expect(Object.keys(root).sort()).toEqual(Object.keys(subpath).sort())
    for (const key of Object.keys(subpath)) expect(root[key], `${name}.${key}`).toBe(subpath[key])
  })

  it("gives the root's flat names the same values from their own modules", () => {
    expect(Root.DistributedCache).toBe(DistributedCache.DistributedCache)
    expect(Root.StrictDistributed).toBe(CacheMode.StrictDistributed)
    expect(Root.ExplicitDegraded).toBe(CacheMode.ExplicitDegraded)
    expect(Root.LocalOnly).toBe(CacheMode.LocalOnly)
    expect(Root.strictDistributed).toBe(CacheMode.strictDistributed)
    expect(Root.RedisClient).toBe(RedisClient.RedisClient)
    expect(Root.SecurityEvent).toBe(SecurityEvent.SecurityEvent)
  })
})
