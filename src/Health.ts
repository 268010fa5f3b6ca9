/**
 * Health checks of a cache, and HTTP handlers for readiness and liveness probes. A check reports
 * whether Redis answers, the cooldown breaker of each failure domain, and whether each near cache
 * may serve: one Effect ({@link check}) and two handlers ({@link readiness}, {@link liveness}).
 *
 * An idle node learns of an outage only when a request reaches Redis; the check sends its own
 * `PING` (beside the breaker: it neither waits for a cooldown nor ends one), so a probe sees an
 * outage on a node that serves nothing. It answers within the client's `commandTimeout` and never
 * fails. What it answers is safe to expose on an internal endpoint: the mode, the backend, the
 * breakers by failure domain (`all`, or a Redis Cluster shard's slot range) and the near caches by
 * keyspace name; never a URL, an address, a password, a key or a tenant id.
 *
 * @since 0.2.0
 */
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type * as Effect from "effect/Effect"
import type { CacheHealth, DistributedCache } from "./DistributedCache.js"
import * as internal from "./internal/health.js"

/**
 * The verdict of a check, as in the IETF health-check response format
 * (draft-inadarei-api-health-check):
 *
 * - `pass`: Redis answers, no breaker is open, every near cache may serve (`LocalOnly`: always).
 * - `warn`: the node serves, but not as usual: `ExplicitDegraded` serving node-locally (Redis does
 *   not answer, or a breaker is open), or a near cache without its proof (its reads go to Redis).
 * - `fail`: `StrictDistributed` with Redis not answering or a breaker open: requests that need
 *   Redis fail with `CacheBackendUnavailable` (503s).
 *
 * @example
 * ```ts
 * import type { Health } from "effect-failclosed"
 *
 * const ready = (status: Health.Status) => status !== "fail"
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export type Status = "pass" | "warn" | "fail"

/**
 * What {@link check} answers: the cache's {@link CacheHealth} and its {@link Status}.
 *
 * @example
 * ```ts
 * import type { Health } from "effect-failclosed"
 *
 * const summary = (report: Health.Report) =>
 *   `${report.status}: ${report.mode} on ${report.backend}, Redis ${report.reachable === false ? "down" : "ok"}`
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface Report extends CacheHealth {
  readonly status: Status
}

/**
 * The health of the cache in context, now: a `PING` to Redis (bounded by `commandTimeout`, sent
 * beside the breaker), the breakers, the near caches, and the {@link Status} they add up to.
 * Never fails; answers within `commandTimeout`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Health, LocalOnly } from "effect-failclosed"
 *
 * const program = Health.check.pipe(
 *   Effect.map((report) => report.status), // "pass"
 *   Effect.provide(LocalOnly)
 * )
 * ```
 *
 * @since 0.2.0
 * @category checks
 */
export const check: Effect.Effect<Report, never, DistributedCache> = internal.check

/**
 * An HTTP handler for a readiness probe: 200 when the node should get traffic (`pass` or `warn`),
 * 503 when it can only fail requests (`fail`: `StrictDistributed` without Redis). The body is the
 * {@link Report} as JSON (`application/health+json`, `Cache-Control: no-store`).
 *
 * @example
 * ```ts
 * import { HttpRouter } from "@effect/platform"
 * import { Health } from "effect-failclosed"
 *
 * const probes = HttpRouter.empty.pipe(
 *   HttpRouter.get("/readyz", Health.readiness),
 *   HttpRouter.get("/livez", Health.liveness)
 * )
 * ```
 *
 * @since 0.2.0
 * @category http
 */
export const readiness: Effect.Effect<HttpServerResponse.HttpServerResponse, never, DistributedCache> =
  internal.readiness

/**
 * An HTTP handler for a liveness probe: 200 whenever the process answers, whatever Redis does
 * (restarting a process does not bring Redis back), with the {@link Report} as JSON. It still
 * runs the whole check, so a process too busy to answer within the probe's timeout is seen.
 *
 * @example
 * ```ts
 * import { HttpRouter } from "@effect/platform"
 * import { Health } from "effect-failclosed"
 *
 * const probes = HttpRouter.empty.pipe(HttpRouter.get("/livez", Health.liveness))
 * ```
 *
 * @since 0.2.0
 * @category http
 */
export const liveness: Effect.Effect<HttpServerResponse.HttpServerResponse, never, DistributedCache> = internal.liveness
