/**
 * The implementation of `HttpMiddleware`: reading the subject, tenant, nonce and cost of a request (and the messages
 * of a 400 about them), the rate-limit decision and its headers, the nonce claim, the 503 of an outage, and the
 * `HttpApi` middleware with their error Schemas. The types and docs are in `HttpMiddleware.ts`.
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
import type { DistributedCache } from "../DistributedCache.js"
import type { CacheBackendUnavailable, InputField } from "../errors.js"
import type {
  Extractor,
  ExtractorContext,
  ExtractorError,
  FailClosedOptions,
  Middleware,
  RateLimitFailure,
  RateLimitOptions,
  ReplayGuardFailure,
  ReplayGuardOptions
} from "../HttpMiddleware.js"
import type * as RateLimiter from "../RateLimiter.js"
import type * as ReplayGuard from "../ReplayGuard.js"

const HEADER_LIMIT = "ratelimit-limit"
const HEADER_REMAINING = "ratelimit-remaining"
const HEADER_RESET = "ratelimit-reset"
const HEADER_RETRY_AFTER = "retry-after"

/** @internal the header of a response whose request was decided node-locally (documented in `HttpMiddleware.ts`) */
export const NODE_LOCAL_HEADER = "node-local-decision" as const

/**
 * Marks whatever response leaves the server for this request (also an error response rendered later) as decided
 * node-locally by `what` (`rate-limit`, `replay-guard`): one list item per middleware, each named once.
 */
const markNodeLocal = (what: string): Effect.Effect<void> =>
  HttpApp.appendPreResponseHandler((_request, response) => {
    const existing = response.headers[NODE_LOCAL_HEADER]
    if (existing === undefined) return Effect.succeed(HttpServerResponse.setHeader(response, NODE_LOCAL_HEADER, what))
    if (existing.split(",").some((item) => item.trim() === what)) return Effect.succeed(response)
    return Effect.succeed(HttpServerResponse.setHeader(response, NODE_LOCAL_HEADER, `${existing}, ${what}`))
  })
const markRateLimit = markNodeLocal("rate-limit")
const markReplayGuard = markNodeLocal("replay-guard")

/** `self`, preceded by `mark` when the decision was node-local */
const markedIf = <A, E, R>(degraded: boolean, mark: Effect.Effect<void>, self: Effect.Effect<A, E, R>) =>
  degraded ? Effect.zipRight(mark, self) : self

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

const invalidAnswer = (error: string): Invalid => ({ _tag: "Invalid", error })

/**
 * The 400 of an input the limiter or guard rejected: the error's `field` names the input (`tenant`, `cost`, else the
 * subject or nonce); its reason never contains the input.
 */
const rejectedBy = (
  error: { readonly field?: InputField | undefined; readonly reason: string },
  main: ReturnType<typeof problemsOf>,
  tenant: ReturnType<typeof problemsOf>,
  cost?: ReturnType<typeof problemsOf>
): Invalid =>
  invalidAnswer(
    error.field === "tenant"
      ? tenant.invalid(error.reason)
      : cost !== undefined && error.field === "cost"
        ? cost.invalid(error.reason)
        : main.invalid(error.reason)
  )

/** the rate-limit headers of a decision */
interface RateLimitHeaders {
  readonly remaining: number
  readonly headers: Record<string, string>
}

/**
 * The middleware's answer to one request: let it through with the rate-limit headers, 429, or 400. (The store's
 * `RateLimitDecision` and the limiter's `RateLimitResult` come before it; this adds what HTTP needs.)
 */
type RateLimitAnswer =
  | { readonly _tag: "Allowed"; readonly headers: RateLimitHeaders; readonly degraded: boolean }
  | {
      readonly _tag: "Denied"
      readonly headers: RateLimitHeaders
      readonly retryAfter: number
      readonly degraded: boolean
    }
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

  const toAnswer = (result: RateLimiter.RateLimitResult): RateLimitAnswer => {
    const reset = secondsOf(resetMillis(result))
    const headers: RateLimitHeaders = {
      remaining: result.remaining,
      headers: {
        [HEADER_LIMIT]: limitHeader,
        [HEADER_REMAINING]: String(result.remaining),
        [HEADER_RESET]: String(reset)
      }
    }
    const degraded = result.degraded
    return result.allowed
      ? { _tag: "Allowed", headers, degraded }
      : { _tag: "Denied", headers, retryAfter: reset, degraded }
  }

  const subjectProblems = problemsOf("rate limit subject", subjectOf)
  const tenantProblems = problemsOf("tenant", tenantOf)
  const costProblems = problemsOf("cost", costOf)
  const missingSubject = Effect.succeed(invalidAnswer(subjectProblems.missing))
  const missingTenant = Effect.succeed(invalidAnswer(tenantProblems.missing))
  const missingCost = Effect.succeed(invalidAnswer(costProblems.missing))

  const consume = (
    subject: string,
    tenant: string | undefined,
    cost: number | undefined
  ): Effect.Effect<RateLimitAnswer, CacheBackendUnavailable, DistributedCache> =>
    limiter.consume(subject, { tenant, cost }).pipe(
      Effect.map(toAnswer),
      Effect.catchTag("RateLimitInputInvalid", (e) =>
        Effect.succeed(rejectedBy(e, subjectProblems, tenantProblems, costProblems))
      )
    )

  // the extractors' errors and requirements are typed by the callers, from the options
  return (request: HttpServerRequest.HttpServerRequest): Effect.Effect<RateLimitAnswer, unknown, unknown> =>
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

/** the middleware's answer to one request carrying a nonce: let it through, 409, or 400 */
type ClaimAnswer = Decided | Invalid

/** a claim the guard decided: by Redis, or node-locally (`degraded`) */
interface Decided {
  readonly _tag: "Claimed" | "Replayed"
  readonly degraded: boolean
}

const CLAIMED: Decided = { _tag: "Claimed", degraded: false }
const CLAIMED_DEGRADED: Decided = { _tag: "Claimed", degraded: true }
const REPLAYED: Decided = { _tag: "Replayed", degraded: false }
const REPLAYED_DEGRADED: Decided = { _tag: "Replayed", degraded: true }

const makeClaimer = (guard: ReplayGuard.ReplayGuard, options: ReplayGuardOptions) => {
  const nonceOf = options.nonce as Extractor<string, unknown, unknown>
  const tenantOf = options.tenant as Extractor<string, unknown, unknown> | undefined
  const nonceProblems = problemsOf("nonce", nonceOf)
  const tenantProblems = problemsOf("tenant", tenantOf)
  const missingNonce = Effect.succeed(invalidAnswer(nonceProblems.missing))
  const missingTenant = Effect.succeed(invalidAnswer(tenantProblems.missing))
  const claim = (
    nonce: string,
    tenant: string | undefined
  ): Effect.Effect<ClaimAnswer, CacheBackendUnavailable, DistributedCache> =>
    guard.claim(nonce, { tenant }).pipe(
      Effect.map((claimed): ClaimAnswer => (claimed.degraded ? CLAIMED_DEGRADED : CLAIMED)),
      Effect.catchTags({
        ReplayDetected: (e) => Effect.succeed<ClaimAnswer>(e.degraded === true ? REPLAYED_DEGRADED : REPLAYED),
        CacheValueInvalid: (e) => Effect.succeed<ClaimAnswer>(rejectedBy(e, nonceProblems, tenantProblems))
      })
    )
  return (request: HttpServerRequest.HttpServerRequest): Effect.Effect<ClaimAnswer, unknown, unknown> =>
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

/** @internal */
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

/** @internal */
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
            return markedIf(
              outcome.degraded,
              markRateLimit,
              Effect.zipRight(appendRateLimitHeaders(outcome.headers), app)
            )
          case "Denied":
            return markedIf(
              outcome.degraded,
              markRateLimit,
              Effect.succeed(
                errorBody(429, "too many requests", {
                  ...outcome.headers.headers,
                  [HEADER_RETRY_AFTER]: String(outcome.retryAfter)
                })
              )
            )
          case "Invalid":
            return Effect.succeed(errorBody(400, outcome.error))
        }
      })
    )) as Middleware<CacheBackendUnavailable | ExtractorError<Options>, DistributedCache | ExtractorContext<Options>>
}

/** @internal */
export const replayGuard = <const Options extends ReplayGuardOptions>(
  guard: ReplayGuard.ReplayGuard,
  options: Options
): Middleware<CacheBackendUnavailable | ExtractorError<Options>, DistributedCache | ExtractorContext<Options>> => {
  const claim = makeClaimer(guard, options)
  const conflict = errorBody(409, "request already processed")
  return (<E0, R0>(app: HttpApp.Default<E0, R0>) =>
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
      Effect.flatMap(claim(request), (outcome) => {
        if (outcome._tag === "Invalid") return Effect.succeed(errorBody(400, outcome.error))
        return markedIf(outcome.degraded, markReplayGuard, outcome._tag === "Claimed" ? app : Effect.succeed(conflict))
      })
    )) as Middleware<CacheBackendUnavailable | ExtractorError<Options>, DistributedCache | ExtractorContext<Options>>
}

/** @internal */
export const failClosedWith = (
  options?: FailClosedOptions
): (<E, R>(app: HttpApp.Default<E, R>) => HttpApp.Default<Exclude<E, CacheBackendUnavailable>, R>) => {
  const unavailable = errorBody(503, "service temporarily unavailable", { [HEADER_RETRY_AFTER]: retryAfterOf(options) })
  return (app) => catchUnavailable(app, Effect.succeed(unavailable))
}

/** @internal */
export const failClosed: <E, R>(app: HttpApp.Default<E, R>) => HttpApp.Default<Exclude<E, CacheBackendUnavailable>, R> =
  failClosedWith()

/** @internal */
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

/** @internal the 429 of `rateLimitApi` (documented as `HttpMiddleware.TooManyRequests`) */
export class TooManyRequests extends Schema.TaggedError<TooManyRequests>(
  "effect-failclosed/HttpMiddleware/TooManyRequests"
)("TooManyRequests", { retryAfter: Schema.Int }, HttpApiSchema.annotations({ status: 429 })) {}

/** @internal the 400 of `rateLimitApi` and `replayGuardApi` (documented as `HttpMiddleware.RequestInvalid`) */
export class RequestInvalid extends Schema.TaggedError<RequestInvalid>(
  "effect-failclosed/HttpMiddleware/RequestInvalid"
)("RequestInvalid", { message: Schema.String }, HttpApiSchema.annotations({ status: 400 })) {}

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

/** @internal */
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
            return markedIf(outcome.degraded, markRateLimit, appendRateLimitHeaders(outcome.headers))
          case "Denied":
            return markedIf(
              outcome.degraded,
              markRateLimit,
              Effect.zipRight(
                appendRateLimitHeaders({
                  remaining: outcome.headers.remaining,
                  headers: { ...outcome.headers.headers, [HEADER_RETRY_AFTER]: String(outcome.retryAfter) }
                }),
                Effect.fail(new TooManyRequests({ retryAfter: outcome.retryAfter }))
              )
            )
          case "Invalid":
            return Effect.fail(new RequestInvalid({ message: outcome.error }))
        }
      }
    })
  )
  return withCapturedContext(middleware) as Effect.Effect<any, never, any>
}

/** @internal */
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
      onSuccess: (outcome): Effect.Effect<void, ReplayGuardFailure> => {
        if (outcome._tag === "Invalid") return Effect.fail(new RequestInvalid({ message: outcome.error }))
        return markedIf(
          outcome.degraded,
          markReplayGuard,
          outcome._tag === "Claimed" ? Effect.void : Effect.fail(new HttpApiError.Conflict())
        )
      }
    })
  )
  return withCapturedContext(middleware) as Effect.Effect<any, never, any>
}

/** @internal */
export const failClosedApi = <A, E, R>(
  self: Effect.Effect<A, E, R>
): Effect.Effect<A, Exclude<E, CacheBackendUnavailable> | HttpApiError.ServiceUnavailable, R> =>
  catchUnavailable(self, defaultUnavailableApi)
