/**
 * HTTP middleware for Effect 4's `effect/http`: a rate limit (429 with `retry-after`, the `ratelimit-*` headers on
 * every response), a replay guard (409), 400 for a missing or invalid subject, nonce, tenant or cost, and 503 with
 * `retry-after` when Redis is unavailable. The same statuses, headers and bodies as `effect-failclosed/HttpMiddleware`
 * (the Effect 3 line), so clients and dashboards cannot tell which line answered. A request decided node-locally by
 * ExplicitDegraded's fallback carries `node-local-decision: rate-limit` (or `replay-guard`).
 *
 * An app is Effect 4's `Effect<HttpServerResponse, E, R | HttpServerRequest>`; each middleware wraps one.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as HttpEffect from "effect/http/HttpEffect"
import { HttpServerRequest } from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import type { DistributedCache } from "./DistributedCache.js"
import type { CacheBackendUnavailable } from "./errors.js"
import { optionChecks } from "./internal/options.js"
import type * as RateLimiter from "./RateLimiter.js"
import type * as ReplayGuard from "./ReplayGuard.js"

/**
 * Reads one value of a request; failing with `NoSuchElementError` means "not there" (a 400), any other failure
 * passes through.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type { HttpMiddleware } from "effect-failclosed-effect4"
 *
 * const apiKey: HttpMiddleware.Extractor<string> = (request) => Effect.succeed(request.headers["x-api-key"] ?? "")
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type Extractor<A, E = Cause.NoSuchElementError, R = never> = (
  request: HttpServerRequest
) => Effect.Effect<A, E, R>

/**
 * @since 0.1.0
 * @category models
 */
export interface RateLimitOptions {
  readonly subject: Extractor<string, any, any>
  readonly tenant?: Extractor<string, any, any> | undefined
  /** a fixed cost per request, or one read from it (default 1) */
  readonly cost?: number | Extractor<number, any, any> | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ReplayGuardOptions {
  readonly nonce: Extractor<string, any, any>
  readonly tenant?: Extractor<string, any, any> | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface FailClosedOptions {
  /** the `retry-after` of a 503 (default 1 second) */
  readonly retryAfter?: Duration.Input | undefined
}

/**
 * A middleware: wraps an app, adding the errors `E` and requirements `R` it brings.
 *
 * @since 0.1.0
 * @category models
 */
export interface Middleware<E, R> {
  <A extends HttpServerResponse.HttpServerResponse, E0, R0>(
    app: Effect.Effect<A, E0, R0>
  ): Effect.Effect<A | HttpServerResponse.HttpServerResponse, E0 | E, R0 | R | HttpServerRequest>
}

const HEADER_LIMIT = "ratelimit-limit"
const HEADER_REMAINING = "ratelimit-remaining"
const HEADER_RESET = "ratelimit-reset"
const HEADER_RETRY_AFTER = "retry-after"
/** the header of a response whose request was decided node-locally */
const NODE_LOCAL_HEADER = "node-local-decision"
/** an HTTP field name (RFC 9110 token) */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

const errorBody = (status: number, error: string, headers?: Record<string, string>) =>
  HttpServerResponse.jsonUnsafe({ error }, headers === undefined ? { status } : { status, headers })

/** whole seconds, rounded up, at least 1 */
const secondsOf = (millis: number): number => Math.max(1, Math.ceil(millis / 1000))

const markNodeLocal = (what: string): Effect.Effect<void, never, HttpServerRequest> =>
  HttpEffect.appendPreResponseHandler((_request, response) => {
    const existing = response.headers[NODE_LOCAL_HEADER]
    if (existing === undefined) return Effect.succeed(HttpServerResponse.setHeader(response, NODE_LOCAL_HEADER, what))
    if (existing.split(",").some((item) => item.trim() === what)) return Effect.succeed(response)
    return Effect.succeed(HttpServerResponse.setHeader(response, NODE_LOCAL_HEADER, `${existing}, ${what}`))
  })
const markedIf = <A, E, R>(degraded: boolean, what: string, self: Effect.Effect<A, E, R>) =>
  degraded ? Effect.andThen(markNodeLocal(what), self) : self

const MISSING: unique symbol = Symbol.for("effect-failclosed/HttpMiddleware/missing")

/** the extractor's value, or MISSING when it found nothing (other failures pass through) */
const extract = <A>(
  extractor: Extractor<A, unknown, unknown> | undefined,
  request: HttpServerRequest
): Effect.Effect<A | undefined | typeof MISSING, unknown, unknown> =>
  extractor === undefined
    ? Effect.succeed(undefined)
    : Effect.catchIf(
        Effect.suspend(() => extractor(request)),
        Cause.isNoSuchElementError,
        () => Effect.succeed(MISSING)
      )

const SourceId: unique symbol = Symbol.for("effect-failclosed/HttpMiddleware/source")
const labelOf = (what: string, extractor: unknown): string => {
  const source = typeof extractor === "function" ? (extractor as { [SourceId]?: string })[SourceId] : undefined
  return source === undefined ? what : `${what} (${source})`
}

/**
 * An extractor of one request header (missing or empty: a 400 that names the header, never its value).
 *
 * @example
 * ```ts
 * import { HttpMiddleware } from "effect-failclosed-effect4"
 *
 * const apiKey = HttpMiddleware.header("x-api-key")
 * ```
 *
 * @since 0.1.0
 * @category extractors
 */
export const header = (name: string): Extractor<string> => {
  if (typeof name !== "string" || !HEADER_NAME.test(name)) {
    throw new Error(`effect-failclosed: HttpMiddleware.header needs an HTTP header name (got ${JSON.stringify(name)})`)
  }
  const key = name.toLowerCase()
  const extractor: Extractor<string> = (request) => {
    const value = request.headers[key]
    return value === undefined || value === "" ? Effect.fail(new Cause.NoSuchElementError()) : Effect.succeed(value)
  }
  return Object.assign(extractor, { [SourceId]: `header "${key}"` })
}

/**
 * Rate-limits the requests of an app: allowed requests get the `ratelimit-limit`, `ratelimit-remaining` and
 * `ratelimit-reset` headers, denied ones a 429 with `retry-after`; a missing or invalid subject, tenant or cost is a
 * 400. An unavailable Redis stays a `CacheBackendUnavailable` failure (see {@link failClosed}).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { HttpServerResponse } from "effect/http"
 * import { HttpMiddleware, RateLimiter } from "effect-failclosed-effect4"
 *
 * const Api = RateLimiter.make({ name: "api", limit: 100, window: "1 minute", algorithm: "sliding-window" })
 * const app = Effect.succeed(HttpServerResponse.text("ok")).pipe(
 *   HttpMiddleware.rateLimit(Api, { subject: HttpMiddleware.header("x-api-key") }),
 *   HttpMiddleware.failClosed
 * )
 * ```
 *
 * @since 0.1.0
 * @category middleware
 */
export const rateLimit = (
  limiter: RateLimiter.RateLimiter,
  options: RateLimitOptions
): Middleware<CacheBackendUnavailable, DistributedCache> => {
  const limit = limiter.limit
  const windowMillis = Duration.toMillis(limiter.window)
  const cost = options.cost
  if (typeof cost === "number" && (!Number.isSafeInteger(cost) || cost <= 0 || cost > limit)) {
    throw new Error(
      `effect-failclosed: HttpMiddleware.rateLimit cost must be an integer from 1 to the limit (${limit})`
    )
  }
  const costOf = typeof cost === "function" ? (cost as Extractor<number, unknown, unknown>) : undefined
  const subjectOf = options.subject as Extractor<string, unknown, unknown>
  const tenantOf = options.tenant as Extractor<string, unknown, unknown> | undefined
  const labels = {
    subject: labelOf("rate limit subject", subjectOf),
    tenant: labelOf("tenant", tenantOf),
    cost: labelOf("cost", costOf)
  }
  // the rejection says which input it is about (`field`); its reason never contains the input
  const invalidBy = (e: { readonly reason: string; readonly field?: string | undefined }) =>
    errorBody(
      400,
      `invalid ${e.field === "tenant" ? labels.tenant : e.field === "cost" ? labels.cost : labels.subject}: ${e.reason}`
    )
  const resetMillis = (result: RateLimiter.RateLimitResult): number => {
    if (!result.allowed) return Duration.toMillis(result.retryAfter)
    if (limiter.algorithm === "token-bucket") return ((limit - result.remaining) * windowMillis) / limit
    return windowMillis
  }
  const decide = (request: HttpServerRequest) =>
    Effect.flatMap(extract(subjectOf, request), (subject) =>
      subject === MISSING || subject === undefined
        ? Effect.succeed(errorBody(400, `missing ${labels.subject}`))
        : Effect.flatMap(extract(tenantOf, request), (tenant) =>
            tenant === MISSING
              ? Effect.succeed(errorBody(400, `missing ${labels.tenant}`))
              : Effect.flatMap(typeof cost === "number" ? Effect.succeed(cost) : extract(costOf, request), (c) =>
                  c === MISSING
                    ? Effect.succeed(errorBody(400, `missing ${labels.cost}`))
                    : limiter
                        .consume(subject, {
                          ...(tenant === undefined ? {} : { tenant }),
                          ...(c === undefined ? {} : { cost: c })
                        })
                        .pipe(
                          Effect.map((result) => {
                            const reset = secondsOf(resetMillis(result))
                            const headers = {
                              [HEADER_LIMIT]: String(limit),
                              [HEADER_REMAINING]: String(result.remaining),
                              [HEADER_RESET]: String(reset)
                            }
                            return { result, headers, reset }
                          }),
                          Effect.catchTag("RateLimitInputInvalid", (e) => Effect.succeed(invalidBy(e)))
                        )
                )
          )
    )
  return ((app: Effect.Effect<HttpServerResponse.HttpServerResponse, unknown, unknown>) =>
    Effect.flatMap(HttpServerRequest, (request: HttpServerRequest) =>
      Effect.flatMap(decide(request), (outcome) => {
        if (HttpServerResponse.isHttpServerResponse(outcome)) return Effect.succeed(outcome)
        const { headers, reset, result } = outcome
        if (!result.allowed) {
          return markedIf(
            result.degraded,
            "rate-limit",
            Effect.succeed(errorBody(429, "too many requests", { ...headers, [HEADER_RETRY_AFTER]: String(reset) }))
          )
        }
        const withHeaders = HttpEffect.appendPreResponseHandler((_request, response) => {
          // several limiters: the headers of the one with the least budget left
          const existing = response.headers[HEADER_REMAINING]
          if (existing !== undefined && Number(existing) <= result.remaining) return Effect.succeed(response)
          return Effect.succeed(HttpServerResponse.setHeaders(response, headers))
        })
        return markedIf(result.degraded, "rate-limit", Effect.andThen(withHeaders, app))
      })
    )) as unknown as Middleware<CacheBackendUnavailable, DistributedCache>
}

/**
 * Lets each nonce through once within the guard's window (on any node of either Effect line): a replay is a 409, a
 * missing or invalid nonce or tenant a 400.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { HttpServerResponse } from "effect/http"
 * import { HttpMiddleware, ReplayGuard } from "effect-failclosed-effect4"
 *
 * const Webhooks = ReplayGuard.make({ name: "webhooks", window: "5 minutes" })
 * const app = Effect.succeed(HttpServerResponse.text("ok")).pipe(
 *   HttpMiddleware.replayGuard(Webhooks, { nonce: HttpMiddleware.header("x-webhook-id") })
 * )
 * ```
 *
 * @since 0.1.0
 * @category middleware
 */
export const replayGuard = (
  guard: ReplayGuard.ReplayGuard,
  options: ReplayGuardOptions
): Middleware<CacheBackendUnavailable, DistributedCache> => {
  const nonceOf = options.nonce as Extractor<string, unknown, unknown>
  const tenantOf = options.tenant as Extractor<string, unknown, unknown> | undefined
  const labels = { nonce: labelOf("nonce", nonceOf), tenant: labelOf("tenant", tenantOf) }
  const conflict = errorBody(409, "request already processed")
  return ((app: Effect.Effect<HttpServerResponse.HttpServerResponse, unknown, unknown>) =>
    Effect.flatMap(HttpServerRequest, (request: HttpServerRequest) =>
      Effect.flatMap(extract(nonceOf, request), (nonce) =>
        nonce === MISSING || nonce === undefined
          ? Effect.succeed(errorBody(400, `missing ${labels.nonce}`))
          : Effect.flatMap(extract(tenantOf, request), (tenant) =>
              tenant === MISSING
                ? Effect.succeed(errorBody(400, `missing ${labels.tenant}`))
                : guard.claim(nonce, tenant === undefined ? {} : { tenant }).pipe(
                    Effect.matchEffect({
                      onSuccess: (claimed) => markedIf(claimed.degraded, "replay-guard", app),
                      onFailure: (e) => {
                        switch (e._tag) {
                          case "ReplayDetected":
                            return markedIf(e.degraded === true, "replay-guard", Effect.succeed(conflict))
                          case "CacheValueInvalid":
                            return Effect.succeed(
                              errorBody(
                                400,
                                `invalid ${e.field === "tenant" ? labels.tenant : labels.nonce}: ${e.reason}`
                              )
                            )
                          default:
                            return Effect.fail(e)
                        }
                      }
                    })
                  )
            )
      )
    )) as unknown as Middleware<CacheBackendUnavailable, DistributedCache>
}

const check = optionChecks("HttpMiddleware")

/**
 * Answers a `CacheBackendUnavailable` of the app with a 503 and `retry-after` (default 1 second): the explicit,
 * visible place where an HTTP service decides what an outage means to its clients.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { HttpServerResponse } from "effect/http"
 * import { HttpMiddleware } from "effect-failclosed-effect4"
 *
 * const app = Effect.succeed(HttpServerResponse.text("ok")).pipe(HttpMiddleware.failClosedWith({ retryAfter: "5 seconds" }))
 * ```
 *
 * @since 0.1.0
 * @category middleware
 */
export const failClosedWith = (
  options?: FailClosedOptions
): (<A, E, R>(
  app: Effect.Effect<A, E, R>
) => Effect.Effect<A | HttpServerResponse.HttpServerResponse, Exclude<E, CacheBackendUnavailable>, R>) => {
  const retryAfter = secondsOf(check.duration("retryAfter", options?.retryAfter, "timeout", "1 second"))
  const unavailable = errorBody(503, "service temporarily unavailable", { [HEADER_RETRY_AFTER]: String(retryAfter) })
  return (app) =>
    Effect.catchIf(
      app,
      (e): e is Extract<typeof e, CacheBackendUnavailable> =>
        typeof e === "object" && e !== null && (e as { _tag?: unknown })._tag === "CacheBackendUnavailable",
      () => Effect.succeed(unavailable)
    ) as Effect.Effect<never, Exclude<never, CacheBackendUnavailable>, never>
}

/**
 * {@link failClosedWith} with its defaults.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { HttpServerResponse } from "effect/http"
 * import { HttpMiddleware } from "effect-failclosed-effect4"
 *
 * const app = Effect.succeed(HttpServerResponse.text("ok")).pipe(HttpMiddleware.failClosed)
 * ```
 *
 * @since 0.1.0
 * @category middleware
 */
export const failClosed: <A, E, R>(
  app: Effect.Effect<A, E, R>
) => Effect.Effect<A | HttpServerResponse.HttpServerResponse, Exclude<E, CacheBackendUnavailable>, R> = failClosedWith()
