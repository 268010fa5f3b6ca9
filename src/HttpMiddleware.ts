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
 * A decision taken node-locally (the `ExplicitDegraded` fallback while Redis is unavailable:
 * a rate limit this node alone counted, a nonce only this node has seen) is marked on the
 * response, whatever its status, by the header {@link nodeLocalDecisionHeader}
 * (`Node-Local-Decision: rate-limit`, `replay-guard`, or both).
 *
 * Response bodies are small JSON objects (`{ "error": "too many requests" }`); none carries a
 * subject, a nonce, a tenant id, a limiter name, a Redis address or the reason of an outage.
 *
 * @since 0.1.0
 */
import * as HttpApiError from "@effect/platform/HttpApiError"
import type * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import type * as HttpApp from "@effect/platform/HttpApp"
import type * as HttpServer from "@effect/platform/HttpServer"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import type * as Cause from "effect/Cause"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type { DistributedCache } from "./DistributedCache.js"
import type { CacheBackendUnavailable } from "./errors.js"
import * as internal from "./internal/httpMiddleware.js"
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
 * import type * as FailClosedHttpMiddleware from "effect-failclosed/HttpMiddleware"
 *
 * // an Option is an Effect that fails with NoSuchElementException when it is None
 * const apiKey: FailClosedHttpMiddleware.Extractor<string> = (request) => Headers.get(request.headers, "x-api-key")
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
 * import type * as FailClosedHttpMiddleware from "effect-failclosed/HttpMiddleware"
 *
 * const options: FailClosedHttpMiddleware.RateLimitOptions = {
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
 * import type * as FailClosedHttpMiddleware from "effect-failclosed/HttpMiddleware"
 *
 * const options: FailClosedHttpMiddleware.ReplayGuardOptions = {
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
 * import type * as FailClosedHttpMiddleware from "effect-failclosed/HttpMiddleware"
 *
 * type E = FailClosedHttpMiddleware.ExtractorError<{ subject: FailClosedHttpMiddleware.Extractor<string> }> // never
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
 * import type * as FailClosedHttpMiddleware from "effect-failclosed/HttpMiddleware"
 *
 * type R = FailClosedHttpMiddleware.ExtractorContext<{ subject: FailClosedHttpMiddleware.Extractor<string> }> // never
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
 * import { type CacheBackendUnavailable, type DistributedCache } from "effect-failclosed"
 * import * as FailClosedHttpMiddleware from "effect-failclosed/HttpMiddleware"
 * import * as RateLimiter from "effect-failclosed/RateLimiter"
 *
 * const Api = RateLimiter.make({ name: "api", limit: 10, window: "1 minute", algorithm: "sliding-window" })
 * const perIp: FailClosedHttpMiddleware.Middleware<CacheBackendUnavailable, DistributedCache> =
 *   FailClosedHttpMiddleware.rateLimit(Api, {
 *     subject: (request) => Option.map(request.remoteAddress, (ip) => `ip:${ip}`)
 *   })
 * const app = HttpServerResponse.text("hello").pipe(perIp, FailClosedHttpMiddleware.failClosed)
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
 * import type * as FailClosedHttpMiddleware from "effect-failclosed/HttpMiddleware"
 *
 * const options: FailClosedHttpMiddleware.FailClosedOptions = { retryAfter: "5 seconds" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface FailClosedOptions {
  readonly retryAfter?: Duration.DurationInput | undefined
}

// ---------------------------------------------------------------------------------------------------------------------
// extractors
/**
 * The response header that marks a decision served node-locally: the `ExplicitDegraded`
 * fallback decided the request while Redis was unavailable, so the rate limit counted only this
 * node's requests and the replay guard knew only this node's nonces. Its value lists the
 * middleware that decided node-locally, each once: `rate-limit`, `replay-guard`, or
 * `rate-limit, replay-guard`. It is set on whatever response leaves for the request (the app's,
 * a 429, a 409), and never under `StrictDistributed` or `LocalOnly`, or when Redis decided.
 *
 * @example
 * ```ts
 * import * as FailClosedHttpMiddleware from "effect-failclosed/HttpMiddleware"
 *
 * // a client, a proxy or a log pipeline can count the answers given without the shared state
 * const decidedNodeLocally = (response: Response) =>
 *   response.headers.get(FailClosedHttpMiddleware.nodeLocalDecisionHeader) !== null
 * ```
 *
 * @since 0.2.0
 * @category headers
 */
export const nodeLocalDecisionHeader: "node-local-decision" = internal.NODE_LOCAL_HEADER

// ---------------------------------------------------------------------------------------------------------------------

/**
 * An {@link Extractor} of one request header: its value, or nothing when the header is absent or
 * empty. A middleware that finds nothing answers 400 naming the header
 * (`missing tenant (header "x-tenant-id")`), which a hand-written extractor cannot do. A
 * `name` that is not an HTTP header name is a programmer error: a synchronous `Error`.
 *
 * @example
 * ```ts
 * import * as FailClosedHttpMiddleware from "effect-failclosed/HttpMiddleware"
 * import * as RateLimiter from "effect-failclosed/RateLimiter"
 *
 * const PerKey = RateLimiter.make({ name: "api", limit: 100, window: "1 minute", algorithm: "sliding-window" })
 *
 * // 400 `missing rate limit subject (header "x-api-key")` for a request without the header
 * // (authenticate the key before this middleware: a client must not pick its own budget)
 * const limited = FailClosedHttpMiddleware.rateLimit(PerKey, { subject: FailClosedHttpMiddleware.header("x-api-key") })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const header: (name: string) => Extractor<string> = internal.header

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
 * import * as FailClosedHttpMiddleware from "effect-failclosed/HttpMiddleware"
 * import * as RateLimiter from "effect-failclosed/RateLimiter"
 *
 * const PerKey = RateLimiter.make({ name: "api", limit: 100, window: "1 minute", algorithm: "sliding-window" })
 *
 * const app = HttpRouter.empty.pipe(
 *   HttpRouter.get("/hello", HttpServerResponse.text("hello")),
 *   FailClosedHttpMiddleware.rateLimit(PerKey, {
 *     // an authenticated API key; without one, the peer address
 *     subject: (request) =>
 *       Headers.get(request.headers, "x-api-key").pipe(
 *         Option.map((key) => `key:${key}`),
 *         Option.orElse(() => Option.map(request.remoteAddress, (ip) => `ip:${ip}`))
 *       ),
 *     cost: (request) => Effect.succeed(request.method === "GET" ? 1 : 5)
 *   }),
 *   FailClosedHttpMiddleware.failClosed
 * )
 * ```
 *
 * @since 0.1.0
 * @category middleware
 */
export const rateLimit: <const Options extends RateLimitOptions>(
  limiter: RateLimiter.RateLimiter,
  options: Options
) => Middleware<CacheBackendUnavailable | ExtractorError<Options>, DistributedCache | ExtractorContext<Options>> =
  internal.rateLimit

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
 * import { ReplayGuard } from "effect-failclosed"
 * import * as FailClosedHttpMiddleware from "effect-failclosed/HttpMiddleware"
 *
 * const Payments = ReplayGuard.make({ name: "payments", window: "24 hours" })
 *
 * const app = HttpRouter.empty.pipe(
 *   HttpRouter.post("/payments", HttpServerResponse.text("accepted", { status: 201 })),
 *   FailClosedHttpMiddleware.replayGuard(Payments, {
 *     nonce: (request) => Headers.get(request.headers, "idempotency-key")
 *   }),
 *   FailClosedHttpMiddleware.failClosed
 * )
 * ```
 *
 * @since 0.1.0
 * @category middleware
 */
export const replayGuard: <const Options extends ReplayGuardOptions>(
  guard: ReplayGuard.ReplayGuard,
  options: Options
) => Middleware<CacheBackendUnavailable | ExtractorError<Options>, DistributedCache | ExtractorContext<Options>> =
  internal.replayGuard

/**
 * Like {@link failClosed}, with a `Retry-After` of your choice (whole seconds, rounded up; a
 * sensible value is the cache's cooldown). A `retryAfter` that is not a positive finite
 * duration is a programmer error: a synchronous `Error`.
 *
 * @example
 * ```ts
 * import { HttpRouter, HttpServerResponse } from "@effect/platform"
 * import * as FailClosedHttpMiddleware from "effect-failclosed/HttpMiddleware"
 *
 * const app = HttpRouter.empty.pipe(
 *   HttpRouter.get("/", HttpServerResponse.text("hello")),
 *   FailClosedHttpMiddleware.failClosedWith({ retryAfter: "2 seconds" })
 * )
 * ```
 *
 * @since 0.1.0
 * @category middleware
 */
export const failClosedWith: (
  options?: FailClosedOptions
) => <E, R>(app: HttpApp.Default<E, R>) => HttpApp.Default<Exclude<E, CacheBackendUnavailable>, R> =
  internal.failClosedWith

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
 * import { Keyspace } from "effect-failclosed"
 * import * as FailClosedHttpMiddleware from "effect-failclosed/HttpMiddleware"
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
 *   FailClosedHttpMiddleware.failClosed
 * )
 * ```
 *
 * @since 0.1.0
 * @category middleware
 */
export const failClosed: <E, R>(app: HttpApp.Default<E, R>) => HttpApp.Default<Exclude<E, CacheBackendUnavailable>, R> =
  internal.failClosed

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
 * import { LocalOnly } from "effect-failclosed"
 * import * as FailClosedHttpMiddleware from "effect-failclosed/HttpMiddleware"
 * import * as RateLimiter from "effect-failclosed/RateLimiter"
 *
 * const Login = RateLimiter.make({ name: "login", limit: 5, window: "15 minutes", algorithm: "sliding-window" })
 *
 * const ServerLive = HttpRouter.empty.pipe(
 *   HttpRouter.post(
 *     "/login",
 *     HttpServerResponse.text("welcome").pipe(
 *       FailClosedHttpMiddleware.rateLimit(Login, { subject: FailClosedHttpMiddleware.header("x-user") })
 *     )
 *   ),
 *   FailClosedHttpMiddleware.serve({ retryAfter: "2 seconds" }),
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
} = internal.serve

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
 * import * as FailClosedHttpMiddleware from "effect-failclosed/HttpMiddleware"
 *
 * const wait = (e: FailClosedHttpMiddleware.TooManyRequests) => Effect.sleep(`${e.retryAfter} seconds`)
 * ```
 *
 * @since 0.1.0
 * @category HttpApi
 */
export const TooManyRequests: typeof internal.TooManyRequests = internal.TooManyRequests

/**
 * @since 0.1.0
 * @category HttpApi
 */
export type TooManyRequests = internal.TooManyRequests

/**
 * The 400 of {@link rateLimitApi} and {@link replayGuardApi}: `message` says what the request
 * lacks or got wrong, so a client can fix it: `missing tenant (header "x-tenant-id")`,
 * `invalid nonce: nonce is longer than 1024 characters`, … (the header is named when the
 * extractor was made by {@link header}). It never contains the value the request carried.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as FailClosedHttpMiddleware from "effect-failclosed/HttpMiddleware"
 *
 * const explain = (e: FailClosedHttpMiddleware.RequestInvalid) => Effect.logInfo(`refused: ${e.message}`)
 * ```
 *
 * @since 0.1.0
 * @category HttpApi
 */
export const RequestInvalid: typeof internal.RequestInvalid = internal.RequestInvalid

/**
 * @since 0.1.0
 * @category HttpApi
 */
export type RequestInvalid = internal.RequestInvalid

/**
 * The failures of {@link rateLimitApi}, to declare as the `failure` of an
 * `HttpApiMiddleware.Tag` (alone, or in a `Schema.Union` with your own).
 *
 * @example
 * ```ts
 * import { HttpApiMiddleware } from "@effect/platform"
 * import * as FailClosedHttpMiddleware from "effect-failclosed/HttpMiddleware"
 *
 * class ApiRateLimit extends HttpApiMiddleware.Tag<ApiRateLimit>()("ApiRateLimit", {
 *   failure: FailClosedHttpMiddleware.RateLimitFailure
 * }) {}
 * ```
 *
 * @since 0.1.0
 * @category HttpApi
 */
export const RateLimitFailure: Schema.Union<
  [typeof TooManyRequests, typeof RequestInvalid, typeof HttpApiError.ServiceUnavailable]
> = Schema.Union(TooManyRequests, RequestInvalid, HttpApiError.ServiceUnavailable)

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
 * import * as FailClosedHttpMiddleware from "effect-failclosed/HttpMiddleware"
 *
 * class Idempotent extends HttpApiMiddleware.Tag<Idempotent>()("Idempotent", {
 *   failure: FailClosedHttpMiddleware.ReplayGuardFailure
 * }) {}
 * ```
 *
 * @since 0.1.0
 * @category HttpApi
 */
export const ReplayGuardFailure: Schema.Union<
  [typeof HttpApiError.Conflict, typeof RequestInvalid, typeof HttpApiError.ServiceUnavailable]
> = Schema.Union(HttpApiError.Conflict, RequestInvalid, HttpApiError.ServiceUnavailable)

/**
 * @since 0.1.0
 * @category HttpApi
 */
export type ReplayGuardFailure = typeof ReplayGuardFailure.Type

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
 * import * as FailClosedHttpMiddleware from "effect-failclosed/HttpMiddleware"
 * import * as RateLimiter from "effect-failclosed/RateLimiter"
 *
 * class ApiRateLimit extends HttpApiMiddleware.Tag<ApiRateLimit>()("ApiRateLimit", {
 *   failure: FailClosedHttpMiddleware.RateLimitFailure
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
 *   FailClosedHttpMiddleware.rateLimitApi(PerIp, {
 *     subject: (request) => Option.map(request.remoteAddress, (ip) => `ip:${ip}`)
 *   })
 * )
 * ```
 *
 * @since 0.1.0
 * @category HttpApi
 */
export const rateLimitApi: <const Options extends RateLimitOptions>(
  limiter: RateLimiter.RateLimiter,
  options: Options & FailClosedOptions
) => Effect.Effect<
  HttpApiMiddleware.HttpApiMiddleware<void, RateLimitFailure | ExtractorError<Options>>,
  never,
  DistributedCache | Exclude<ExtractorContext<Options>, HttpServerRequest.HttpServerRequest>
> = internal.rateLimitApi

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
 * import { ReplayGuard } from "effect-failclosed"
 * import * as FailClosedHttpMiddleware from "effect-failclosed/HttpMiddleware"
 *
 * class Idempotent extends HttpApiMiddleware.Tag<Idempotent>()("Idempotent", {
 *   failure: FailClosedHttpMiddleware.ReplayGuardFailure
 * }) {}
 *
 * const Keys = ReplayGuard.make({ name: "idempotency-keys", window: "24 hours" })
 * const IdempotentLive = Layer.effect(
 *   Idempotent,
 *   FailClosedHttpMiddleware.replayGuardApi(Keys, {
 *     nonce: (request) => Headers.get(request.headers, "idempotency-key")
 *   })
 * )
 * ```
 *
 * @since 0.1.0
 * @category HttpApi
 */
export const replayGuardApi: <const Options extends ReplayGuardOptions>(
  guard: ReplayGuard.ReplayGuard,
  options: Options & FailClosedOptions
) => Effect.Effect<
  HttpApiMiddleware.HttpApiMiddleware<void, ReplayGuardFailure | ExtractorError<Options>>,
  never,
  DistributedCache | Exclude<ExtractorContext<Options>, HttpServerRequest.HttpServerRequest>
> = internal.replayGuardApi

/**
 * For `HttpApi` handlers: turns a `CacheBackendUnavailable` into `HttpApiError.ServiceUnavailable`
 * (503, with `Retry-After`), which the endpoint declares with `.addError(HttpApiError.ServiceUnavailable)`.
 *
 * @example
 * ```ts
 * import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiError, HttpApiGroup } from "@effect/platform"
 * import { Effect, Option, Schema } from "effect"
 * import { Keyspace } from "effect-failclosed"
 * import * as FailClosedHttpMiddleware from "effect-failclosed/HttpMiddleware"
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
 *       FailClosedHttpMiddleware.failClosedApi
 *     )
 *   )
 * )
 * ```
 *
 * @since 0.1.0
 * @category HttpApi
 */
export const failClosedApi: <A, E, R>(
  self: Effect.Effect<A, E, R>
) => Effect.Effect<A, Exclude<E, CacheBackendUnavailable> | HttpApiError.ServiceUnavailable, R> = internal.failClosedApi
