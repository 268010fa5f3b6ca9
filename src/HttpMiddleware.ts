/**
 * HTTP middleware for `@effect/platform`: a `RateLimiter` answers 429, a `ReplayGuard` answers
 * 409, and `CacheBackendUnavailable` becomes a 503. The shared state is consulted before the
 * request reaches the app, and a request is never let through because that state could not be
 * consulted: there is no "skip the check" path, not for an outage (503) and not for a request
 * that does not say who it is from or which nonce it carries (400).
 *
 * **Serve with {@link serve}** (or apply {@link failClosed} last): `rateLimit`, `replayGuard`
 * and every cache call in a handler leave `CacheBackendUnavailable` in the app's error channel,
 * and `HttpServer.serve` accepts an app with any error, so a forgotten `failClosed` is not a
 * type error: an outage would then be an empty 500 (still never a 200, but no `Retry-After` and
 * nothing a client can act on). `HttpMiddleware.serve(app)` is `HttpServer.serve` with
 * `failClosed` applied, so the short way is the safe one.
 *
 * Two flavours:
 *
 * - `HttpApp` middleware (`rateLimit`, `replayGuard`, `failClosed`) for `HttpRouter`,
 *   `HttpServer.serve` and `HttpApiBuilder.middleware`: `HttpApp.Default -> HttpApp.Default`,
 *   served with `serve`.
 * - `HttpApiMiddleware` implementations (`rateLimitApi`, `replayGuardApi`) for `HttpApi`,
 *   whose failures are Schemas with an HTTP status (`TooManyRequests` 429,
 *   `HttpApiError.Conflict` 409, `RequestInvalid` 400, `HttpApiError.ServiceUnavailable` 503),
 *   so they appear in the OpenAPI document and decode in an `HttpApiClient`. There the types do
 *   catch an unhandled outage: a handler's `CacheBackendUnavailable` must be mapped
 *   ({@link failClosedApi}) to an error the endpoint declares.
 *
 * A 400 says what is missing or invalid, one message each: `missing rate limit subject`,
 * `missing tenant`, `invalid tenant: tenant id is longer than 256 characters`, `missing nonce`,
 * `invalid nonce: …`, `missing cost`, `invalid cost: …`; with an extractor made by {@link header}
 * the message names the header (`missing tenant (header "x-tenant-id")`). It never repeats the
 * value the request carried.
 *
 * Rate-limit headers follow draft-ietf-httpapi-ratelimit-headers-06 (the `RateLimit-Limit`,
 * `RateLimit-Remaining`, `RateLimit-Reset` fields most clients and proxies understand):
 *
 * - `RateLimit-Limit`: the limiter's `limit` (requests, or cost units, per `window`).
 * - `RateLimit-Remaining`: the budget left after this request.
 * - `RateLimit-Reset`: seconds (rounded up). On a 429, the same as `Retry-After`: when the
 *   request could be allowed. Otherwise when the whole budget is certainly back: `window` for
 *   `sliding-window` (the request just counted expires then), the time to refill what is missing
 *   for `token-bucket`, and `window` for `fixed-window` (an upper bound: the decision does not
 *   say where the current window ends).
 * - `Retry-After` (429 and 503): whole seconds, rounded up, at least 1.
 *
 * When several `rateLimit`s apply to one request, the headers of the one with the least
 * remaining budget are sent.
 *
 * Response bodies are small JSON objects (`{ "error": "too many requests" }`); none carries a
 * subject, a nonce, a tenant id, a limiter name, a Redis address or the reason of an outage.
 *
 * @since 0.1.0
 */
import * as HttpApiError from "@effect/platform/HttpApiError"
import type * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type { DistributedCache } from "./DistributedCache.js"
import type { CacheBackendUnavailable } from "./errors.js"
import type * as RateLimiter from "./RateLimiter.js"
import type * as ReplayGuard from "./ReplayGuard.js"

// ---------------------------------------------------------------------------------------------------------------------
// models
// ---------------------------------------------------------------------------------------------------------------------

/**
 * Reads one value from a request, as an Effect. A value that is absent is a failure with
 * `NoSuchElementException` (what an `Option` is, used as an Effect), and the middleware answers
 * 400: an absent subject or nonce never skips the check. Other failures are the caller's and
 * pass through.
 *
 * @example
 * ```ts
 * import { Headers } from "@effect/platform"
 * import type { HttpMiddleware } from "effect-failclosed"
 *
 * // an Option is an Effect that fails with NoSuchElementException when it is None
 * const apiKey: HttpMiddleware.Extractor<string> = (request) => Headers.get(request.headers, "x-api-key")
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type Extractor<A, E = Cause.NoSuchElementException, R = never> = (
  request: HttpServerRequest.HttpServerRequest
) => Effect.Effect<A, E, R>

/**
 * Options of {@link rateLimit} and {@link rateLimitApi}.
 *
 * - `subject`: who the request counts against (an API key, a user id, the peer address). A
 *   value the client chooses freely must not be the only subject, or every request can claim to
 *   be a new client.
 * - `tenant`: selects a separate budget per tenant. Like the subject, take it from what the
 *   request has proven (the authenticated account), or each new tenant id is a fresh budget.
 * - `cost`: how much of the budget the request takes, a positive integer at most the limit
 *   (default 1); a number, or read from the request (a cost over the limit answers 400).
 *
 * @example
 * ```ts
 * import { Effect, Option } from "effect"
 * import type { HttpMiddleware } from "effect-failclosed"
 *
 * const options: HttpMiddleware.RateLimitOptions = {
 *   subject: (request) => Option.map(request.remoteAddress, (ip) => `ip:${ip}`),
 *   cost: (request) => Effect.succeed(request.method === "POST" ? 5 : 1)
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface RateLimitOptions {
  readonly subject: Extractor<string, any, any>
  readonly tenant?: Extractor<string, any, any> | undefined
  readonly cost?: number | Extractor<number, any, any> | undefined
}

/**
 * Options of {@link replayGuard} and {@link replayGuardApi}: `nonce` is the value that may be
 * accepted once per window (a webhook delivery id, an idempotency key, a one-time token);
 * `tenant` selects a separate nonce space. Only let a request claim its nonce once it has been
 * authenticated (verify a signature in `nonce`, or before this middleware), or anybody can burn
 * the nonces of others; and take the tenant from what was authenticated, or a replay sent under
 * another tenant id is accepted.
 *
 * @example
 * ```ts
 * import { Headers } from "@effect/platform"
 * import type { HttpMiddleware } from "effect-failclosed"
 *
 * const options: HttpMiddleware.ReplayGuardOptions = {
 *   nonce: (request) => Headers.get(request.headers, "idempotency-key")
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface ReplayGuardOptions {
  readonly nonce: Extractor<string, any, any>
  readonly tenant?: Extractor<string, any, any> | undefined
}

/**
 * The errors an options object adds: those of its extractors, less
 * `NoSuchElementException` (answered with 400).
 *
 * @example
 * ```ts
 * import type { HttpMiddleware } from "effect-failclosed"
 *
 * type E = HttpMiddleware.ExtractorError<{ subject: HttpMiddleware.Extractor<string> }> // never
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type ExtractorError<Options> = Exclude<
  Options[keyof Options] extends infer F ? (F extends Extractor<any, infer E, any> ? E : never) : never,
  Cause.NoSuchElementException
>

/**
 * The requirements an options object adds: those of its extractors.
 *
 * @example
 * ```ts
 * import type { HttpMiddleware } from "effect-failclosed"
 *
 * type R = HttpMiddleware.ExtractorContext<{ subject: HttpMiddleware.Extractor<string> }> // never
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type ExtractorContext<Options> = Options[keyof Options] extends infer F
  ? F extends Extractor<any, any, infer R>
    ? R
    : never
  : never

/**
 * An `HttpApp` middleware that adds the errors `E` and the requirements `R` to the app it wraps.
 * It is an `@effect/platform` `HttpMiddleware`, so it can be given to `HttpServer.serve`,
 * `HttpRouter.use` or `HttpApiBuilder.middleware` too.
 *
 * @example
 * ```ts
 * import { HttpServerResponse } from "@effect/platform"
 * import { Option } from "effect"
 * import { type CacheBackendUnavailable, type DistributedCache, HttpMiddleware, RateLimiter } from "effect-failclosed"
 *
 * const Api = RateLimiter.make({ name: "api", limit: 10, window: "1 minute", algorithm: "sliding-window" })
 * const perIp: HttpMiddleware.Middleware<CacheBackendUnavailable, DistributedCache> = HttpMiddleware.rateLimit(Api, {
 *   subject: (request) => Option.map(request.remoteAddress, (ip) => `ip:${ip}`)
 * })
 * const app = HttpServerResponse.text("hello").pipe(perIp, HttpMiddleware.failClosed)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Middleware<E, R> {
  <E0, R0>(app: HttpApp.Default<E0, R0>): HttpApp.Default<E0 | E, R0 | R>
}

/**
 * Options of {@link failClosedWith} and of the `HttpApi` middleware: `retryAfter` is the
 * `Retry-After` of a 503 (default 1 second; a sensible value is the cache's cooldown, after
 * which the next call probes Redis again).
 *
 * @example
 * ```ts
 * import type { HttpMiddleware } from "effect-failclosed"
 *
 * const options: HttpMiddleware.FailClosedOptions = { retryAfter: "5 seconds" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface FailClosedOptions {
  readonly retryAfter?: Duration.DurationInput | undefined
}

// ---------------------------------------------------------------------------------------------------------------------
// internals
// ---------------------------------------------------------------------------------------------------------------------

const HEADER_LIMIT = "ratelimit-limit"
const HEADER_REMAINING = "ratelimit-remaining"
const HEADER_RESET = "ratelimit-reset"
const HEADER_RETRY_AFTER = "retry-after"

/** whole seconds, rounded up, at least 1 */
const secondsOf = (millis: number): number => Math.max(1, Math.ceil(millis / 1000))

const retryAfterOf = (options: FailClosedOptions | undefined): string => {
  const input = options?.retryAfter ?? Duration.seconds(1)
  const decoded = Duration.decodeUnknown(input)
  if (Option.isNone(decoded) || !Duration.isFinite(decoded.value) || Duration.toMillis(decoded.value) <= 0) {
    throw new Error("effect-failclosed: HttpMiddleware retryAfter must be a positive finite duration")
  }
  return String(secondsOf(Duration.toMillis(decoded.value)))
}

const isCacheBackendUnavailable = (u: unknown): u is CacheBackendUnavailable =>
  Predicate.isTagged(u, "CacheBackendUnavailable")

/** `self` with `CacheBackendUnavailable` handled by `onUnavailable` */
const catchUnavailable = <A, E, R, A2, E2>(
  self: Effect.Effect<A, E, R>,
  onUnavailable: Effect.Effect<A2, E2>
): Effect.Effect<A | A2, Exclude<E, CacheBackendUnavailable> | E2, R> =>
  Effect.catchIf(self as Effect.Effect<A, unknown, R>, isCacheBackendUnavailable, () => onUnavailable) as Effect.Effect<
    A | A2,
    Exclude<E, CacheBackendUnavailable> | E2,
    R
  >

const errorBody = (status: number, error: string, headers?: Record<string, string>) =>
  HttpServerResponse.unsafeJson({ error }, headers === undefined ? { status } : { status, headers })

/** a missing value, as the marker `undefined`; other failures pass through */
const extract = <A>(
  extractor: Extractor<A, unknown, unknown>,
  request: HttpServerRequest.HttpServerRequest
): Effect.Effect<A | undefined, unknown, unknown> =>
  Effect.catchIf(
    Effect.suspend(() => extractor(request)),
    Cause.isNoSuchElementException,
    () => Effect.succeed(undefined)
  )

const MISSING: unique symbol = Symbol.for("effect-failclosed/HttpMiddleware/missing")
type Missing = typeof MISSING

/** the optional extractor's value, `undefined` when there is none, `MISSING` when it found nothing */
const extractOptional = <A>(
  extractor: Extractor<A, unknown, unknown> | undefined,
  request: HttpServerRequest.HttpServerRequest
): Effect.Effect<A | undefined | Missing, unknown, unknown> =>
  extractor === undefined
    ? Effect.succeed(undefined)
    : Effect.map(extract(extractor, request), (a) => (a === undefined ? MISSING : a))

/** an HTTP field name (RFC 9110 token) */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

/** where an extractor made by {@link header} reads from, for the messages of a 400 */
const SourceId: unique symbol = Symbol.for("effect-failclosed/HttpMiddleware/source")

const sourceOf = (extractor: unknown): string | undefined =>
  Predicate.hasProperty(extractor, SourceId) && typeof extractor[SourceId] === "string"
    ? extractor[SourceId]
    : undefined

/**
 * The messages of the 400s about one value a middleware reads from a request (`what`: "tenant",
 * "nonce" …), naming the header when the extractor was made by {@link header}. They never
 * contain the value itself.
 */
const problemsOf = (what: string, extractor: unknown) => {
  const source = sourceOf(extractor)
  const label = source === undefined ? what : `${what} (${source})`
  return {
    missing: `missing ${label}`,
    invalid: (reason: string) => `invalid ${label}: ${reason}`
  }
}

/** a request the middleware refuses with 400: what is missing or invalid, for the client */
interface Invalid {
  readonly _tag: "Invalid"
  readonly error: string
}

const invalidOutcome = (error: string): Invalid => ({ _tag: "Invalid", error })

/**
 * The 400 of an input the limiter or guard rejected: their reasons start with the input they
 * are about (`"tenant id …"`, `"cost …"`, else the subject or nonce) and never contain it.
 */
const rejectedBy = (
  reason: string,
  main: ReturnType<typeof problemsOf>,
  tenant: ReturnType<typeof problemsOf>,
  cost?: ReturnType<typeof problemsOf>
): Invalid =>
  invalidOutcome(
    reason.startsWith("tenant")
      ? tenant.invalid(reason)
      : cost !== undefined && reason.startsWith("cost")
        ? cost.invalid(reason)
        : main.invalid(reason)
  )

/** the rate-limit headers of a decision */
interface RateLimitHeaders {
  readonly remaining: number
  readonly headers: Record<string, string>
}

type RateLimitOutcome =
  | { readonly _tag: "Allowed"; readonly headers: RateLimitHeaders }
  | { readonly _tag: "Denied"; readonly headers: RateLimitHeaders; readonly retryAfter: number }
  | Invalid

const makeRateLimitDecider = (limiter: RateLimiter.RateLimiter, options: RateLimitOptions) => {
  const limit = limiter.limit
  const windowMillis = Duration.toMillis(limiter.window)
  const limitHeader = String(limit)
  const cost = options.cost
  if (typeof cost === "number" && (!Number.isSafeInteger(cost) || cost <= 0 || cost > limit)) {
    throw new Error(
      `effect-failclosed: HttpMiddleware.rateLimit cost must be an integer from 1 to the limit (${limit})`
    )
  }
  const costOf: Extractor<number, unknown, unknown> | undefined =
    cost === undefined || typeof cost === "number" ? undefined : cost
  const fixedCost = typeof cost === "number" ? cost : undefined
  const subjectOf = options.subject as Extractor<string, unknown, unknown>
  const tenantOf = options.tenant as Extractor<string, unknown, unknown> | undefined

  const resetMillis = (result: RateLimiter.RateLimitResult): number => {
    if (!result.allowed) return Duration.toMillis(result.retryAfter)
    if (limiter.algorithm === "token-bucket") return ((limit - result.remaining) * windowMillis) / limit
    return windowMillis
  }

  const toOutcome = (result: RateLimiter.RateLimitResult): RateLimitOutcome => {
    const reset = secondsOf(resetMillis(result))
    const headers: RateLimitHeaders = {
      remaining: result.remaining,
      headers: {
        [HEADER_LIMIT]: limitHeader,
        [HEADER_REMAINING]: String(result.remaining),
        [HEADER_RESET]: String(reset)
      }
    }
    return result.allowed ? { _tag: "Allowed", headers } : { _tag: "Denied", headers, retryAfter: reset }
  }

  const subjectProblems = problemsOf("rate limit subject", subjectOf)
  const tenantProblems = problemsOf("tenant", tenantOf)
  const costProblems = problemsOf("cost", costOf)
  const missingSubject = Effect.succeed(invalidOutcome(subjectProblems.missing))
  const missingTenant = Effect.succeed(invalidOutcome(tenantProblems.missing))
  const missingCost = Effect.succeed(invalidOutcome(costProblems.missing))

  const consume = (
    subject: string,
    tenant: string | undefined,
    cost: number | undefined
  ): Effect.Effect<RateLimitOutcome, CacheBackendUnavailable, DistributedCache> =>
    limiter.consume(subject, { tenant, cost }).pipe(
      Effect.map(toOutcome),
      Effect.catchTag("RateLimitInputInvalid", (e) =>
        Effect.succeed(rejectedBy(e.reason, subjectProblems, tenantProblems, costProblems))
      )
    )

  // the extractors' errors and requirements are typed by the callers, from the options
  return (request: HttpServerRequest.HttpServerRequest): Effect.Effect<RateLimitOutcome, unknown, unknown> =>
    Effect.flatMap(extract(subjectOf, request), (subject) =>
      subject === undefined
        ? missingSubject
        : Effect.flatMap(extractOptional(tenantOf, request), (tenant) =>
            tenant === MISSING
              ? missingTenant
              : Effect.flatMap(
                  fixedCost === undefined ? extractOptional(costOf, request) : Effect.succeed(fixedCost),
                  (cost) => (cost === MISSING ? missingCost : consume(subject, tenant, cost))
                )
          )
    )
}

/**
 * Sets the rate-limit headers on whatever response leaves the server for this request (also an
 * error response rendered later), unless a response already carries those of a limiter with
 * less budget left.
 */
const appendRateLimitHeaders = (decision: RateLimitHeaders): Effect.Effect<void> =>
  HttpApp.appendPreResponseHandler((_request, response) => {
    const existing = response.headers[HEADER_REMAINING]
    if (existing !== undefined && Number(existing) <= decision.remaining) return Effect.succeed(response)
    return Effect.succeed(HttpServerResponse.setHeaders(response, decision.headers))
  })

type ClaimOutcome = "Claimed" | "Replayed" | Invalid

const makeClaimer = (guard: ReplayGuard.ReplayGuard, options: ReplayGuardOptions) => {
  const nonceOf = options.nonce as Extractor<string, unknown, unknown>
  const tenantOf = options.tenant as Extractor<string, unknown, unknown> | undefined
  const nonceProblems = problemsOf("nonce", nonceOf)
  const tenantProblems = problemsOf("tenant", tenantOf)
  const missingNonce = Effect.succeed(invalidOutcome(nonceProblems.missing))
  const missingTenant = Effect.succeed(invalidOutcome(tenantProblems.missing))
  const claim = (
    nonce: string,
    tenant: string | undefined
  ): Effect.Effect<ClaimOutcome, CacheBackendUnavailable, DistributedCache> =>
    guard.claim(nonce, { tenant }).pipe(
      Effect.as<ClaimOutcome>("Claimed"),
      Effect.catchTags({
        ReplayDetected: () => Effect.succeed<ClaimOutcome>("Replayed"),
        CacheValueInvalid: (e) => Effect.succeed<ClaimOutcome>(rejectedBy(e.reason, nonceProblems, tenantProblems))
      })
    )
  return (request: HttpServerRequest.HttpServerRequest): Effect.Effect<ClaimOutcome, unknown, unknown> =>
    Effect.flatMap(extract(nonceOf, request), (nonce) =>
      nonce === undefined
        ? missingNonce
        : Effect.flatMap(extractOptional(tenantOf, request), (tenant) =>
            tenant === MISSING ? missingTenant : claim(nonce, tenant)
          )
    )
}

// ---------------------------------------------------------------------------------------------------------------------
// extractors
// ---------------------------------------------------------------------------------------------------------------------

/**
 * An {@link Extractor} of one request header: its value, or nothing when the header is absent or
 * empty. A middleware that finds nothing answers 400 naming the header
 * (`missing tenant (header "x-tenant-id")`), which a hand-written extractor cannot do. A
 * `name` that is not an HTTP header name is a programmer error: a synchronous `Error`.
 *
 * @example
 * ```ts
 * import { HttpMiddleware, RateLimiter } from "effect-failclosed"
 *
 * const PerKey = RateLimiter.make({ name: "api", limit: 100, window: "1 minute", algorithm: "sliding-window" })
 *
 * // 400 `missing rate limit subject (header "x-api-key")` for a request without the header
 * // (authenticate the key before this middleware: a client must not pick its own budget)
 * const limited = HttpMiddleware.rateLimit(PerKey, { subject: HttpMiddleware.header("x-api-key") })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const header = (name: string): Extractor<string> => {
  if (typeof name !== "string" || !HEADER_NAME.test(name)) {
    throw new Error(`effect-failclosed: HttpMiddleware.header needs an HTTP header name (got ${JSON.stringify(name)})`)
  }
  const key = name.toLowerCase()
  const extractor: Extractor<string> = (request) => {
    const value = request.headers[key]
    return value === undefined || value === "" ? Option.none() : Option.some(value)
  }
  return Object.assign(extractor, { [SourceId]: `header "${key}"` })
}

// ---------------------------------------------------------------------------------------------------------------------
// HttpApp middleware
// ---------------------------------------------------------------------------------------------------------------------

/**
 * Takes one rate-limit decision per request before the app runs. Allowed: the app answers, with
 * `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` headers. Denied: 429 with
 * `Retry-After` and the same headers; the app does not run. No subject (its extractor found
 * nothing), an empty or oversized one, a tenant extractor that found nothing or an invalid
 * tenant id, or a cost read from the request that is over the limit: 400, whose `error` names
 * which (`missing tenant (header "x-tenant-id")`). Redis unavailable: the app does not run and
 * `CacheBackendUnavailable` stays in the error channel: serve the app with {@link serve}, or
 * apply {@link failClosed}, to answer 503.
 *
 * A constant `cost` that is not an integer from 1 to the limit is a programmer error: a
 * synchronous `Error`.
 *
 * @example
 * ```ts
 * import { Headers, HttpRouter, HttpServerResponse } from "@effect/platform"
 * import { Effect, Option } from "effect"
 * import { HttpMiddleware, RateLimiter } from "effect-failclosed"
 *
 * const PerKey = RateLimiter.make({ name: "api", limit: 100, window: "1 minute", algorithm: "sliding-window" })
 *
 * const app = HttpRouter.empty.pipe(
 *   HttpRouter.get("/hello", HttpServerResponse.text("hello")),
 *   HttpMiddleware.rateLimit(PerKey, {
 *     // an authenticated API key; without one, the peer address
 *     subject: (request) =>
 *       Headers.get(request.headers, "x-api-key").pipe(
 *         Option.map((key) => `key:${key}`),
 *         Option.orElse(() => Option.map(request.remoteAddress, (ip) => `ip:${ip}`))
 *       ),
 *     cost: (request) => Effect.succeed(request.method === "GET" ? 1 : 5)
 *   }),
 *   HttpMiddleware.failClosed
 * )
 * ```
 *
 * @since 0.1.0
 * @category middleware
 */
export const rateLimit = <const Options extends RateLimitOptions>(
  limiter: RateLimiter.RateLimiter,
  options: Options
): Middleware<CacheBackendUnavailable | ExtractorError<Options>, DistributedCache | ExtractorContext<Options>> => {
  const decide = makeRateLimitDecider(limiter, options)
  return (<E0, R0>(app: HttpApp.Default<E0, R0>) =>
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
      Effect.flatMap(decide(request), (outcome) => {
        switch (outcome._tag) {
          case "Allowed":
            return Effect.zipRight(appendRateLimitHeaders(outcome.headers), app)
          case "Denied":
            return Effect.succeed(
              errorBody(429, "too many requests", {
                ...outcome.headers.headers,
                [HEADER_RETRY_AFTER]: String(outcome.retryAfter)
              })
            )
          case "Invalid":
            return Effect.succeed(errorBody(400, outcome.error))
        }
      })
    )) as Middleware<CacheBackendUnavailable | ExtractorError<Options>, DistributedCache | ExtractorContext<Options>>
}

/**
 * Claims the request's nonce before the app runs, so a request is processed at most once per
 * window, on any node. Claimed: the app answers. Already claimed: 409; the app does not run. No
 * nonce (its extractor found nothing), an empty or oversized one, a tenant extractor that found
 * nothing or an invalid tenant id: 400, whose `error` names which (`missing nonce (header
 * "webhook-id")`, `missing tenant`). Redis unavailable: the app does not run and
 * `CacheBackendUnavailable` stays in the error channel: serve the app with {@link serve}, or
 * apply {@link failClosed}, to answer 503.
 *
 * The claim stands whatever the app then answers: a retry of a request that failed needs a new
 * nonce.
 *
 * @example
 * ```ts
 * import { Headers, HttpRouter, HttpServerResponse } from "@effect/platform"
 * import { HttpMiddleware, ReplayGuard } from "effect-failclosed"
 *
 * const Payments = ReplayGuard.make({ name: "payments", window: "24 hours" })
 *
 * const app = HttpRouter.empty.pipe(
 *   HttpRouter.post("/payments", HttpServerResponse.text("accepted", { status: 201 })),
 *   HttpMiddleware.replayGuard(Payments, { nonce: (request) => Headers.get(request.headers, "idempotency-key") }),
 *   HttpMiddleware.failClosed
 * )
 * ```
 *
 * @since 0.1.0
 * @category middleware
 */
export const replayGuard = <const Options extends ReplayGuardOptions>(
  guard: ReplayGuard.ReplayGuard,
  options: Options
): Middleware<CacheBackendUnavailable | ExtractorError<Options>, DistributedCache | ExtractorContext<Options>> => {
  const claim = makeClaimer(guard, options)
  const conflict = errorBody(409, "request already processed")
  return (<E0, R0>(app: HttpApp.Default<E0, R0>) =>
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
      Effect.flatMap(claim(request), (outcome) =>
        outcome === "Claimed" ? app : Effect.succeed(outcome === "Replayed" ? conflict : errorBody(400, outcome.error))
      )
    )) as Middleware<CacheBackendUnavailable | ExtractorError<Options>, DistributedCache | ExtractorContext<Options>>
}

/**
 * Like {@link failClosed}, with a `Retry-After` of your choice (whole seconds, rounded up; a
 * sensible value is the cache's cooldown). A `retryAfter` that is not a positive finite
 * duration is a programmer error: a synchronous `Error`.
 *
 * @example
 * ```ts
 * import { HttpRouter, HttpServerResponse } from "@effect/platform"
 * import { HttpMiddleware } from "effect-failclosed"
 *
 * const app = HttpRouter.empty.pipe(
 *   HttpRouter.get("/", HttpServerResponse.text("hello")),
 *   HttpMiddleware.failClosedWith({ retryAfter: "2 seconds" })
 * )
 * ```
 *
 * @since 0.1.0
 * @category middleware
 */
export const failClosedWith = (
  options?: FailClosedOptions
): (<E, R>(app: HttpApp.Default<E, R>) => HttpApp.Default<Exclude<E, CacheBackendUnavailable>, R>) => {
  const unavailable = errorBody(503, "service temporarily unavailable", { [HEADER_RETRY_AFTER]: retryAfterOf(options) })
  return (app) => catchUnavailable(app, Effect.succeed(unavailable))
}

/**
 * Answers 503 with `Retry-After: 1` when the app fails with `CacheBackendUnavailable` (from this
 * module's middleware, or from any cache operation of a handler), and removes that error from
 * the app's error channel. Never a 200 (nothing was decided), never a 500, and the body is
 * `{ "error": "service temporarily unavailable" }`: no mode, operation, reason or address.
 *
 * Apply it last, around the whole app, or serve with {@link serve}, which does. Forgetting it
 * is not a type error (`HttpServer.serve` accepts an app with any error): the outage would be
 * an empty 500.
 *
 * @example
 * ```ts
 * import { HttpRouter, HttpServerResponse } from "@effect/platform"
 * import { Effect, Option, Schema } from "effect"
 * import { HttpMiddleware, Keyspace } from "effect-failclosed"
 *
 * const Profiles = Keyspace.make({ name: "profiles", key: Schema.String, value: Schema.String, timeToLive: "1 hour" })
 *
 * const app = HttpRouter.empty.pipe(
 *   HttpRouter.get(
 *     "/profile",
 *     Effect.map(Profiles.get("ada"), (cached) =>
 *       HttpServerResponse.text(Option.match(cached, { onNone: () => "unknown", onSome: (c) => c.value }))
 *     )
 *   ),
 *   HttpMiddleware.failClosed
 * )
 * ```
 *
 * @since 0.1.0
 * @category middleware
 */
export const failClosed: <E, R>(app: HttpApp.Default<E, R>) => HttpApp.Default<Exclude<E, CacheBackendUnavailable>, R> =
  failClosedWith()

/**
 * Serves an `HttpApp` (an `HttpRouter`, a route, any app) with {@link failClosed} applied: the
 * safe way to serve an app that uses this library, and the shortest. It is
 * `HttpServer.serve(failClosedWith(options)(app))`, so an outage anywhere in the app (this
 * module's middleware, or a cache call in a handler) answers 503 with `Retry-After`, not the
 * empty 500 that `HttpServer.serve(app)` gives a `CacheBackendUnavailable` nobody handled
 * (the types of `HttpServer.serve` accept any error, so they cannot warn). Use it where you
 * would call `HttpServer.serve`; the Layer needs an `HttpServer` (`NodeHttpServer.layer`, …)
 * and the app's services, a `DistributedCache` among them.
 *
 * @example
 * ```ts
 * import { HttpRouter, HttpServerResponse } from "@effect/platform"
 * import { Layer } from "effect"
 * import { HttpMiddleware, LocalOnly, RateLimiter } from "effect-failclosed"
 *
 * const Login = RateLimiter.make({ name: "login", limit: 5, window: "15 minutes", algorithm: "sliding-window" })
 *
 * const ServerLive = HttpRouter.empty.pipe(
 *   HttpRouter.post(
 *     "/login",
 *     HttpServerResponse.text("welcome").pipe(
 *       HttpMiddleware.rateLimit(Login, { subject: HttpMiddleware.header("x-user") })
 *     )
 *   ),
 *   HttpMiddleware.serve({ retryAfter: "2 seconds" }),
 *   Layer.provide(LocalOnly)
 * )
 * ```
 *
 * @since 0.1.0
 * @category serving
 */
export const serve: {
  (
    options?: FailClosedOptions
  ): <E, R>(
    app: HttpApp.Default<E, R>
  ) => Layer.Layer<never, never, HttpServer.HttpServer | Exclude<R, HttpServerRequest.HttpServerRequest | Scope.Scope>>
  <E, R>(
    app: HttpApp.Default<E, R>,
    options?: FailClosedOptions
  ): Layer.Layer<never, never, HttpServer.HttpServer | Exclude<R, HttpServerRequest.HttpServerRequest | Scope.Scope>>
} = dual(
  (args) => Effect.isEffect(args[0]),
  <E, R>(app: HttpApp.Default<E, R>, options?: FailClosedOptions) => HttpServer.serve(failClosedWith(options)(app))
)

// ---------------------------------------------------------------------------------------------------------------------
// HttpApi middleware
// ---------------------------------------------------------------------------------------------------------------------

/**
 * The 429 of {@link rateLimitApi}: `retryAfter` is whole seconds, as in the `Retry-After`
 * header sent with it.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { HttpMiddleware } from "effect-failclosed"
 *
 * const wait = (e: HttpMiddleware.TooManyRequests) => Effect.sleep(`${e.retryAfter} seconds`)
 * ```
 *
 * @since 0.1.0
 * @category HttpApi
 */
export class TooManyRequests extends Schema.TaggedError<TooManyRequests>(
  "effect-failclosed/HttpMiddleware/TooManyRequests"
)("TooManyRequests", { retryAfter: Schema.Int }, HttpApiSchema.annotations({ status: 429 })) {}

/**
 * The 400 of {@link rateLimitApi} and {@link replayGuardApi}: `message` says what the request
 * lacks or got wrong, so a client can fix it: `missing tenant (header "x-tenant-id")`,
 * `invalid nonce: nonce is longer than 1024 characters`, … (the header is named when the
 * extractor was made by {@link header}). It never contains the value the request carried.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { HttpMiddleware } from "effect-failclosed"
 *
 * const explain = (e: HttpMiddleware.RequestInvalid) => Effect.logInfo(`refused: ${e.message}`)
 * ```
 *
 * @since 0.1.0
 * @category HttpApi
 */
export class RequestInvalid extends Schema.TaggedError<RequestInvalid>(
  "effect-failclosed/HttpMiddleware/RequestInvalid"
)("RequestInvalid", { message: Schema.String }, HttpApiSchema.annotations({ status: 400 })) {}

/**
 * The failures of {@link rateLimitApi}, to declare as the `failure` of an
 * `HttpApiMiddleware.Tag` (alone, or in a `Schema.Union` with your own).
 *
 * @example
 * ```ts
 * import { HttpApiMiddleware } from "@effect/platform"
 * import { HttpMiddleware } from "effect-failclosed"
 *
 * class ApiRateLimit extends HttpApiMiddleware.Tag<ApiRateLimit>()("ApiRateLimit", {
 *   failure: HttpMiddleware.RateLimitFailure
 * }) {}
 * ```
 *
 * @since 0.1.0
 * @category HttpApi
 */
export const RateLimitFailure = Schema.Union(TooManyRequests, RequestInvalid, HttpApiError.ServiceUnavailable)

/**
 * @since 0.1.0
 * @category HttpApi
 */
export type RateLimitFailure = typeof RateLimitFailure.Type

/**
 * The failures of {@link replayGuardApi}, to declare as the `failure` of an
 * `HttpApiMiddleware.Tag`.
 *
 * @example
 * ```ts
 * import { HttpApiMiddleware } from "@effect/platform"
 * import { HttpMiddleware } from "effect-failclosed"
 *
 * class Idempotent extends HttpApiMiddleware.Tag<Idempotent>()("Idempotent", {
 *   failure: HttpMiddleware.ReplayGuardFailure
 * }) {}
 * ```
 *
 * @since 0.1.0
 * @category HttpApi
 */
export const ReplayGuardFailure = Schema.Union(HttpApiError.Conflict, RequestInvalid, HttpApiError.ServiceUnavailable)

/**
 * @since 0.1.0
 * @category HttpApi
 */
export type ReplayGuardFailure = typeof ReplayGuardFailure.Type

/** runs `middleware` in the context captured when the Layer was built (per-request services win) */
const withCapturedContext = <A, E, R>(
  middleware: Effect.Effect<A, E, R>
): Effect.Effect<
  Effect.Effect<A, E, HttpServerRequest.HttpServerRequest>,
  never,
  Exclude<R, HttpServerRequest.HttpServerRequest>
> =>
  Effect.map(Effect.context<Exclude<R, HttpServerRequest.HttpServerRequest>>(), (captured) =>
    Effect.mapInputContext(
      middleware as Effect.Effect<
        A,
        E,
        Exclude<R, HttpServerRequest.HttpServerRequest> | HttpServerRequest.HttpServerRequest
      >,
      (current: Context.Context<HttpServerRequest.HttpServerRequest>) => Context.merge(captured, current)
    )
  )

const unavailableApi = (retryAfter: string) => {
  const addHeader = HttpApp.appendPreResponseHandler((_request, response) =>
    Effect.succeed(HttpServerResponse.setHeader(response, HEADER_RETRY_AFTER, retryAfter))
  )
  return Effect.zipRight(addHeader, Effect.fail(new HttpApiError.ServiceUnavailable()))
}

const defaultUnavailableApi = unavailableApi(retryAfterOf(undefined))

/**
 * The implementation of an `HttpApiMiddleware.Tag` that applies a rate limiter, as in
 * {@link rateLimit}: denied fails with `TooManyRequests` (429, with `Retry-After` and the
 * rate-limit headers), a missing or invalid subject, tenant or cost with {@link RequestInvalid}
 * (400, its message naming which), and Redis
 * unavailable with `HttpApiError.ServiceUnavailable` (503, `Retry-After`). Allowed responses
 * carry the rate-limit headers. Build the Tag's Layer with `Layer.effect(Tag, rateLimitApi(…))`;
 * the Tag's `failure` must include {@link RateLimitFailure} and the extractors' own errors.
 *
 * An `HttpApiMiddleware` runs before the handler and cannot wrap it: a handler that uses the
 * cache itself maps its own `CacheBackendUnavailable` with {@link failClosedApi}.
 *
 * @example
 * ```ts
 * import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiMiddleware } from "@effect/platform"
 * import { Layer, Option, Schema } from "effect"
 * import { HttpMiddleware, RateLimiter } from "effect-failclosed"
 *
 * class ApiRateLimit extends HttpApiMiddleware.Tag<ApiRateLimit>()("ApiRateLimit", {
 *   failure: HttpMiddleware.RateLimitFailure
 * }) {}
 *
 * class Api extends HttpApi.make("api").add(
 *   HttpApiGroup.make("greetings")
 *     .add(HttpApiEndpoint.get("hello", "/hello").addSuccess(Schema.String))
 *     .middleware(ApiRateLimit)
 * ) {}
 *
 * const PerIp = RateLimiter.make({ name: "per-ip", limit: 60, window: "1 minute", algorithm: "token-bucket" })
 * const ApiRateLimitLive = Layer.effect(
 *   ApiRateLimit,
 *   HttpMiddleware.rateLimitApi(PerIp, { subject: (request) => Option.map(request.remoteAddress, (ip) => `ip:${ip}`) })
 * )
 * ```
 *
 * @since 0.1.0
 * @category HttpApi
 */
export const rateLimitApi = <const Options extends RateLimitOptions>(
  limiter: RateLimiter.RateLimiter,
  options: Options & FailClosedOptions
): Effect.Effect<
  HttpApiMiddleware.HttpApiMiddleware<void, RateLimitFailure | ExtractorError<Options>>,
  never,
  DistributedCache | Exclude<ExtractorContext<Options>, HttpServerRequest.HttpServerRequest>
> => {
  const decide = makeRateLimitDecider(limiter, options)
  const unavailable = unavailableApi(retryAfterOf(options))
  const middleware = Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
    Effect.matchEffect(decide(request), {
      onFailure: (e) => (isCacheBackendUnavailable(e) ? unavailable : Effect.fail(e)),
      onSuccess: (outcome): Effect.Effect<void, RateLimitFailure> => {
        switch (outcome._tag) {
          case "Allowed":
            return appendRateLimitHeaders(outcome.headers)
          case "Denied":
            return Effect.zipRight(
              appendRateLimitHeaders({
                remaining: outcome.headers.remaining,
                headers: { ...outcome.headers.headers, [HEADER_RETRY_AFTER]: String(outcome.retryAfter) }
              }),
              Effect.fail(new TooManyRequests({ retryAfter: outcome.retryAfter }))
            )
          case "Invalid":
            return Effect.fail(new RequestInvalid({ message: outcome.error }))
        }
      }
    })
  )
  return withCapturedContext(middleware) as Effect.Effect<any, never, any>
}

/**
 * The implementation of an `HttpApiMiddleware.Tag` that applies a replay guard, as in
 * {@link replayGuard}: an already claimed nonce fails with `HttpApiError.Conflict` (409), a
 * missing or invalid nonce or tenant with {@link RequestInvalid} (400, its message naming which),
 * and Redis unavailable with
 * `HttpApiError.ServiceUnavailable` (503, `Retry-After`). The Tag's `failure` must include
 * {@link ReplayGuardFailure} and the extractors' own errors.
 *
 * @example
 * ```ts
 * import { Headers, HttpApiMiddleware } from "@effect/platform"
 * import { Layer } from "effect"
 * import { HttpMiddleware, ReplayGuard } from "effect-failclosed"
 *
 * class Idempotent extends HttpApiMiddleware.Tag<Idempotent>()("Idempotent", {
 *   failure: HttpMiddleware.ReplayGuardFailure
 * }) {}
 *
 * const Keys = ReplayGuard.make({ name: "idempotency-keys", window: "24 hours" })
 * const IdempotentLive = Layer.effect(
 *   Idempotent,
 *   HttpMiddleware.replayGuardApi(Keys, { nonce: (request) => Headers.get(request.headers, "idempotency-key") })
 * )
 * ```
 *
 * @since 0.1.0
 * @category HttpApi
 */
export const replayGuardApi = <const Options extends ReplayGuardOptions>(
  guard: ReplayGuard.ReplayGuard,
  options: Options & FailClosedOptions
): Effect.Effect<
  HttpApiMiddleware.HttpApiMiddleware<void, ReplayGuardFailure | ExtractorError<Options>>,
  never,
  DistributedCache | Exclude<ExtractorContext<Options>, HttpServerRequest.HttpServerRequest>
> => {
  const claim = makeClaimer(guard, options)
  const unavailable = unavailableApi(retryAfterOf(options))
  const middleware = Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
    Effect.matchEffect(claim(request), {
      onFailure: (e) => (isCacheBackendUnavailable(e) ? unavailable : Effect.fail(e)),
      onSuccess: (outcome): Effect.Effect<void, ReplayGuardFailure> =>
        outcome === "Claimed"
          ? Effect.void
          : Effect.fail(
              outcome === "Replayed" ? new HttpApiError.Conflict() : new RequestInvalid({ message: outcome.error })
            )
    })
  )
  return withCapturedContext(middleware) as Effect.Effect<any, never, any>
}

/**
 * For `HttpApi` handlers: turns a `CacheBackendUnavailable` into `HttpApiError.ServiceUnavailable`
 * (503, with `Retry-After`), which the endpoint declares with `.addError(HttpApiError.ServiceUnavailable)`.
 *
 * @example
 * ```ts
 * import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiError, HttpApiGroup } from "@effect/platform"
 * import { Effect, Option, Schema } from "effect"
 * import { HttpMiddleware, Keyspace } from "effect-failclosed"
 *
 * const Names = Keyspace.make({ name: "names", key: Schema.String, value: Schema.String, timeToLive: "1 hour" })
 *
 * class Api extends HttpApi.make("api").add(
 *   HttpApiGroup.make("names").add(
 *     HttpApiEndpoint.get("name", "/name").addSuccess(Schema.String).addError(HttpApiError.ServiceUnavailable)
 *   )
 * ) {}
 *
 * const NamesLive = HttpApiBuilder.group(Api, "names", (handlers) =>
 *   handlers.handle("name", () =>
 *     Names.get("ada").pipe(
 *       Effect.map(Option.match({ onNone: () => "unknown", onSome: (c) => c.value })),
 *       Effect.catchTag("CacheEntryInvalid", () => Effect.succeed("unknown")),
 *       HttpMiddleware.failClosedApi
 *     )
 *   )
 * )
 * ```
 *
 * @since 0.1.0
 * @category HttpApi
 */
export const failClosedApi = <A, E, R>(
  self: Effect.Effect<A, E, R>
): Effect.Effect<A, Exclude<E, CacheBackendUnavailable> | HttpApiError.ServiceUnavailable, R> =>
  catchUnavailable(self, defaultUnavailableApi)
