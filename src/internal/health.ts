/**
 * The implementation of `Health`: the status of a cache's health, and the readiness and liveness handlers. The
 * snapshot itself is the `DistributedCache` service's `health` (built by the policy, internal/policy.ts).
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import { type CacheHealth, DistributedCache } from "../DistributedCache.js"
import type { Report, Status } from "../Health.js"

/** @internal */
export const statusOf = (health: CacheHealth): Status => {
  if (health.mode === "LocalOnly") return "pass"
  const redisDown = health.reachable === false || health.breakers.some((b) => b.open)
  if (redisDown) return health.mode === "StrictDistributed" ? "fail" : "warn"
  return health.nearCaches.every((n) => n.proven) ? "pass" : "warn"
}

/** @internal */
export const check: Effect.Effect<Report, never, DistributedCache> = Effect.flatMap(DistributedCache, (cache) =>
  Effect.map(cache.health, (health): Report => ({
    status: statusOf(health),
    mode: health.mode,
    backend: health.backend,
    reachable: health.reachable,
    breakers: health.breakers,
    nearCaches: health.nearCaches
  }))
)

const respond = (report: Report, status: number) =>
  HttpServerResponse.unsafeJson(report, {
    status,
    contentType: "application/health+json",
    headers: { "cache-control": "no-store" }
  })

/** @internal */
export const readiness = Effect.map(check, (report) => respond(report, report.status === "fail" ? 503 : 200))

/** @internal */
export const liveness = Effect.map(check, (report) => respond(report, 200))
