import { createServer } from "node:http"
import {
  Headers,
  HttpApi,
  HttpApiBuilder,
  HttpApiEndpoint,
  HttpApiError,
  HttpApiGroup,
  HttpApiMiddleware,
  type HttpApp,
  HttpRouter,
  HttpServer,
  HttpServerRequest,
  HttpServerResponse
} from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { describe, expect, expectTypeOf, it } from "@effect/vitest"
import { Context, Effect, Layer, LogLevel, Logger, Option, Schema } from "effect"
import {
  type CacheBackendUnavailable,
  type DistributedCache,
  HttpMiddleware,
  Keyspace,
  localOnly,
  RateLimiter,
  RedisClient,
  ReplayGuard,
  strictDistributed,
  TestCache
} from "effect-failclosed"
import { type RedisServer, redisServer } from "./support/RedisServer.js"

const LIMIT = 3
const WINDOW_SECONDS = 60

const Api = RateLimiter.make({
  name: "mw-api",
  limit: LIMIT,
  window: `${WINDOW_SECONDS} seconds`,
  algorithm: "sliding-window"
})
const Hooks = ReplayGuard.make({ name: "mw-hooks", window: "1 minute" })
const Notes = Keyspace.make({ name: "mw-notes", key: Schema.String, value: Schema.String, timeToLive: "1 minute" })

const apiKey = (request: HttpServerRequest.HttpServerRequest) => Headers.get(request.headers, "x-api-key")
const webhookId = (request: HttpServerRequest.HttpServerRequest) => Headers.get(request.headers, "webhook-id")

/** a handler that uses the cache itself: its CacheBackendUnavailable is failClosed's too */
const note = Effect.map(Notes.get("n"), (cached) =>
  HttpServerResponse.text(Option.match(cached, { onNone: () => "none", onSome: (c) => c.value }))
).pipe(Effect.catchTag("CacheEntryInvalid", () => HttpServerResponse.text("none")))

/** the routes, with `rateLimit` and `replayGuard` per route and `failClosed` around all of them */
const routes = HttpRouter.empty.pipe(
  HttpRouter.get("/limited", HttpServerResponse.text("ok").pipe(HttpMiddleware.rateLimit(Api, { subject: apiKey }))),
  HttpRouter.post(
    "/hooks",
    HttpServerResponse.text("received").pipe(HttpMiddleware.replayGuard(Hooks, { nonce: webhookId }))
  ),
  HttpRouter.get("/note", note)
)
const routerApp = routes.pipe(HttpMiddleware.failClosed)

// ---------------------------------------------------------------------------------------------------------------------
// the same, as an HttpApi
// ---------------------------------------------------------------------------------------------------------------------

class ApiRateLimit extends HttpApiMiddleware.Tag<ApiRateLimit>()("ApiRateLimit", {
  failure: HttpMiddleware.RateLimitFailure
}) {}

class Idempotent extends HttpApiMiddleware.Tag<Idempotent>()("Idempotent", {
  failure: HttpMiddleware.ReplayGuardFailure
}) {}

class TestApi extends HttpApi.make("test").add(
  HttpApiGroup.make("main")
    .add(HttpApiEndpoint.get("limited", "/limited").addSuccess(Schema.String).middleware(ApiRateLimit))
    .add(HttpApiEndpoint.post("hooks", "/hooks").addSuccess(Schema.String).middleware(Idempotent))
    .add(HttpApiEndpoint.get("note", "/note").addSuccess(Schema.String).addError(HttpApiError.ServiceUnavailable))
) {}

const MainLive = HttpApiBuilder.group(TestApi, "main", (handlers) =>
  handlers
    .handle("limited", () => Effect.succeed("ok"))
    .handle("hooks", () => Effect.succeed("received"))
    .handle("note", () =>
      Notes.get("n").pipe(
        Effect.map(Option.match({ onNone: () => "none", onSome: (c) => c.value })),
        Effect.catchTag("CacheEntryInvalid", () => Effect.succeed("none")),
        HttpMiddleware.failClosedApi
      )
    )
)

const TestApiLive = HttpApiBuilder.api(TestApi).pipe(
  Layer.provide(MainLive),
  Layer.provide(Layer.effect(ApiRateLimit, HttpMiddleware.rateLimitApi(Api, { subject: apiKey }))),
  Layer.provide(Layer.effect(Idempotent, HttpMiddleware.replayGuardApi(Hooks, { nonce: webhookId })))
)

// ---------------------------------------------------------------------------------------------------------------------
// serving and requests
// ---------------------------------------------------------------------------------------------------------------------

type Cache = Layer.Layer<DistributedCache, CacheBackendUnavailable>

const strict = (redis: RedisServer): Cache =>
  strictDistributed({ cooldown: "200 millis" }).pipe(
    Layer.provide(RedisClient.layer({ url: redis.url, commandTimeout: "200 millis" }))
  )

const baseUrlOf = (context: Context.Context<HttpServer.HttpServer>) => {
  const address = Context.get(context, HttpServer.HttpServer).address
  if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
  return `http://127.0.0.1:${address.port}`
}

const NodeServer = NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })

/** an HttpApp on a free loopback port, with `cache`; its base URL */
const serveApp = <E>(app: HttpApp.Default<E, DistributedCache>, cache: Cache) =>
  Effect.map(Layer.build(HttpServer.serve(app).pipe(Layer.provide(cache), Layer.provideMerge(NodeServer))), baseUrlOf)

const serveApi = (cache: Cache) =>
  Effect.map(
    Layer.build(
      HttpApiBuilder.serve().pipe(Layer.provide(TestApiLive), Layer.provide(cache), Layer.provideMerge(NodeServer))
    ),
    baseUrlOf
  )

interface Reply {
  readonly status: number
  readonly headers: globalThis.Headers
  readonly body: string
}

const request = (url: string, init?: RequestInit): Effect.Effect<Reply> =>
  Effect.promise(async () => {
    const response = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) })
    return { status: response.status, headers: response.headers, body: await response.text() }
  })

const limited = (base: string, key?: string) =>
  request(`${base}/limited`, key === undefined ? {} : { headers: { "x-api-key": key } })

const hook = (base: string, id?: string) =>
  request(`${base}/hooks`, { method: "POST", body: "{}", headers: id === undefined ? {} : { "webhook-id": id } })

const rateLimitHeaders = (reply: Reply) => ({
  limit: reply.headers.get("ratelimit-limit"),
  remaining: reply.headers.get("ratelimit-remaining"),
  reset: reply.headers.get("ratelimit-reset")
})

/** nothing about the backend, the mode or the failure reaches a client */
const expectNoInternals = (reply: Reply, redis?: RedisServer) => {
  const text = reply.body + JSON.stringify([...reply.headers])
  for (const word of ["redis", "Redis", "StrictDistributed", "CacheBackendUnavailable", "cooldown", "closed"]) {
    expect(text).not.toContain(word)
  }
  if (redis !== undefined) expect(text).not.toContain(String(redis.port))
}

const quiet = Logger.withMinimumLogLevel(LogLevel.None)

// ---------------------------------------------------------------------------------------------------------------------
// scenarios shared by both flavours and both modes
// ---------------------------------------------------------------------------------------------------------------------

const flavours = [
  { name: "HttpRouter middleware", serve: (cache: Cache) => serveApp(routerApp, cache) },
  { name: "HttpApi middleware", serve: serveApi }
] as const

/** 200 with the headers within the budget, then 429, per subject; 400 without a subject */
const rateLimitScenario = (base: string, flavour: string) =>
  Effect.gen(function* () {
    for (let i = 1; i <= LIMIT; i++) {
      const reply = yield* limited(base, "k1")
      expect(reply.status).toBe(200)
      expect(rateLimitHeaders(reply)).toEqual({
        limit: String(LIMIT),
        remaining: String(LIMIT - i),
        // sliding-window: the request just counted leaves the window after exactly `window`
        reset: String(WINDOW_SECONDS)
      })
      expect(reply.headers.get("retry-after")).toBeNull()
    }
    for (let i = 0; i < 2; i++) {
      const denied = yield* limited(base, "k1")
      expect(denied.status).toBe(429)
      const retryAfter = Number(denied.headers.get("retry-after"))
      expect(retryAfter).toBeGreaterThanOrEqual(WINDOW_SECONDS - 2)
      expect(retryAfter).toBeLessThanOrEqual(WINDOW_SECONDS)
      expect(rateLimitHeaders(denied)).toEqual({ limit: String(LIMIT), remaining: "0", reset: String(retryAfter) })
      expect(JSON.parse(denied.body)).toEqual(
        flavour === "HttpApi middleware" ? { _tag: "TooManyRequests", retryAfter } : { error: "too many requests" }
      )
    }
    // another subject has its own budget
    const other = yield* limited(base, "k2")
    expect(other.status).toBe(200)
    expect(other.headers.get("ratelimit-remaining")).toBe(String(LIMIT - 1))
    // no subject: refused, never let through unchecked (and an empty one is no subject either)
    for (const key of [undefined, ""]) {
      const anonymous = yield* limited(base, key)
      expect(anonymous.status).toBe(400)
      expect(anonymous.headers.get("ratelimit-remaining")).toBeNull()
    }
  })

/** 200 once per nonce, 409 for its replays, 400 without a nonce */
const replayScenario = (base: string) =>
  Effect.gen(function* () {
    const first = yield* hook(base, "evt_1")
    expect(first.status).toBe(200)
    expect(first.body).toContain("received")
    for (let i = 0; i < 2; i++) expect((yield* hook(base, "evt_1")).status).toBe(409)
    expect((yield* hook(base, "evt_2")).status).toBe(200)
    expect((yield* hook(base)).status).toBe(400)
    expect((yield* hook(base, "")).status).toBe(400)
    // the refused requests burnt nothing
    expect((yield* hook(base, "evt_3")).status).toBe(200)
  })

describe("HttpMiddleware", () => {
  for (const flavour of flavours) {
    describe(flavour.name, () => {
      it.scopedLive("StrictDistributed: 200 within the budget, 429 over it, 409 on replay, 400 without a key", () =>
        Effect.gen(function* () {
          const redis = yield* redisServer()
          const base = yield* flavour.serve(strict(redis))
          yield* rateLimitScenario(base, flavour.name)
          yield* replayScenario(base)
          // the budget is Redis', shared by every node: a second server sees it spent
          const second = yield* flavour.serve(strict(redis))
          expect((yield* limited(second, "k1")).status).toBe(429)
          expect((yield* hook(second, "evt_1")).status).toBe(409)
        })
      )

      it.scopedLive("LocalOnly: the same answers from memory", () =>
        Effect.gen(function* () {
          const base = yield* flavour.serve(localOnly())
          yield* rateLimitScenario(base, flavour.name)
          yield* replayScenario(base)
        })
      )

      it.scopedLive("StrictDistributed: 503 with Retry-After, never 200, while Redis is down; back when it is", () =>
        Effect.gen(function* () {
          const redis = yield* redisServer()
          const base = yield* flavour.serve(strict(redis))
          expect((yield* limited(base, "k1")).status).toBe(200)
          expect((yield* hook(base, "evt_1")).status).toBe(200)
          expect((yield* request(`${base}/note`)).status).toBe(200)
          yield* Effect.promise(() => redis.kill())
          // a fresh subject and a fresh nonce would have been allowed: nobody can tell, so neither is
          for (const reply of [
            yield* limited(base, "k1"),
            yield* limited(base, "fresh"),
            yield* hook(base, "evt_1"),
            yield* hook(base, "evt_new"),
            yield* request(`${base}/note`)
          ]) {
            expect(reply.status).toBe(503)
            expect(reply.headers.get("retry-after")).toBe("1")
            expect(reply.headers.get("ratelimit-remaining")).toBeNull()
            expectNoInternals(reply, redis)
          }
          // a missing key is still a 400: the check is not skipped, and the outage is not the client's fault
          expect((yield* limited(base)).status).toBe(400)
          expect((yield* hook(base)).status).toBe(400)

          yield* Effect.promise(() => redis.restart())
          let status = 0
          for (let i = 0; i < 40 && status !== 200; i++) {
            status = (yield* limited(base, "k1")).status
            if (status !== 200) yield* Effect.sleep("100 millis")
          }
          // the restarted Redis is empty: a fresh budget, and the delivery ids start afresh
          expect(status).toBe(200)
          expect((yield* hook(base, "evt_1")).status).toBe(200)
        }).pipe(quiet)
      )
    })
  }

  it.scopedLive("without failClosed an outage is an empty 500: still never 200, and nothing leaks", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const base = yield* serveApp(routes, strict(redis))
      expect((yield* limited(base, "k1")).status).toBe(200)
      yield* Effect.promise(() => redis.kill())
      const reply = yield* limited(base, "k1")
      expect(reply.status).toBe(500)
      expect(reply.body).toBe("")
      expectNoInternals(reply, redis)
    }).pipe(quiet)
  )

  it.scopedLive("headers: token-bucket reset, a cost, and the most restrictive of two limiters", () =>
    Effect.gen(function* () {
      // 4 tokens refilled over 8 s: one token every 2 s
      const Bucket = RateLimiter.make({ name: "mw-bucket", limit: 4, window: "8 seconds", algorithm: "token-bucket" })
      const Wide = RateLimiter.make({ name: "mw-wide", limit: 100, window: "1 minute", algorithm: "fixed-window" })
      const app = HttpRouter.empty.pipe(
        HttpRouter.get("/one", HttpServerResponse.text("one")),
        HttpRouter.get(
          "/three",
          HttpServerResponse.text("three").pipe(HttpMiddleware.rateLimit(Bucket, { subject: apiKey, cost: 3 }))
        ),
        HttpRouter.use(HttpMiddleware.rateLimit(Bucket, { subject: apiKey })),
        HttpMiddleware.rateLimit(Wide, { subject: apiKey }),
        HttpMiddleware.failClosed
      )
      const base = yield* serveApp(app, localOnly())
      const one = yield* request(`${base}/one`, { headers: { "x-api-key": "a" } })
      expect(one.status).toBe(200)
      // the bucket has 3 of 4 left (the wide limiter 99 of 100): the bucket's headers are sent
      expect(rateLimitHeaders(one)).toEqual({ limit: "4", remaining: "3", reset: "2" })
      // cost 3 on top of 1 (the router-wide bucket takes 1 first): 0 left, 8 s to refill all of it
      const three = yield* request(`${base}/three`, { headers: { "x-api-key": "b" } })
      expect(three.status).toBe(200)
      expect(rateLimitHeaders(three)).toEqual({ limit: "4", remaining: "0", reset: "8" })
      const denied = yield* request(`${base}/one`, { headers: { "x-api-key": "b" } })
      expect(denied.status).toBe(429)
      expect(denied.headers.get("retry-after")).toBe("2")
      expect(rateLimitHeaders(denied)).toEqual({ limit: "4", remaining: "0", reset: "2" })
      // a cost over the limit is a programmer error, found when the middleware is made
      expect(() => HttpMiddleware.rateLimit(Bucket, { subject: apiKey, cost: 5 })).toThrow(/cost/)
    })
  )

  it("types: the outage is in the error channel until failClosed removes it; extractor errors pass through", () => {
    class NotAuthenticated extends Schema.TaggedError<NotAuthenticated>()("NotAuthenticated", {}) {}
    const app = HttpServerResponse.text("ok").pipe(
      HttpMiddleware.rateLimit(Api, {
        subject: (request) =>
          Option.isSome(Headers.get(request.headers, "authorization"))
            ? Effect.succeed("user")
            : Effect.fail(new NotAuthenticated())
      })
    )
    expectTypeOf<Effect.Effect.Error<typeof app>>().toEqualTypeOf<NotAuthenticated | CacheBackendUnavailable>()
    expectTypeOf<
      Exclude<Effect.Effect.Context<typeof app>, HttpServerRequest.HttpServerRequest>
    >().toEqualTypeOf<DistributedCache>()
    const closed = HttpMiddleware.failClosed(app)
    expectTypeOf<Effect.Effect.Error<typeof closed>>().toEqualTypeOf<NotAuthenticated>()
    // an Option is an extractor: a missing value is a 400, not an error of the app
    const guarded = HttpServerResponse.text("ok").pipe(HttpMiddleware.replayGuard(Hooks, { nonce: webhookId }))
    expectTypeOf<Effect.Effect.Error<typeof guarded>>().toEqualTypeOf<CacheBackendUnavailable>()
  })
})

// ---------------------------------------------------------------------------------------------------------------------
// 400s that say what is wrong, and the safe way to serve
// ---------------------------------------------------------------------------------------------------------------------

const tenantHeader = HttpMiddleware.header("x-tenant-id")
const byHeaders = { subject: HttpMiddleware.header("x-api-key"), tenant: tenantHeader }
const nonceByHeaders = { nonce: HttpMiddleware.header("webhook-id"), tenant: tenantHeader }
/** hand-written extractors: the middleware cannot know where they read from */
const byFunctions = {
  subject: apiKey,
  tenant: (request: HttpServerRequest.HttpServerRequest) => Headers.get(request.headers, "x-tenant-id"),
  cost: (request: HttpServerRequest.HttpServerRequest) => Option.map(Headers.get(request.headers, "x-cost"), Number)
}

const tenantRouter = HttpRouter.empty.pipe(
  HttpRouter.get("/limited", HttpServerResponse.text("ok").pipe(HttpMiddleware.rateLimit(Api, byHeaders))),
  HttpRouter.post(
    "/hooks",
    HttpServerResponse.text("received").pipe(HttpMiddleware.replayGuard(Hooks, nonceByHeaders))
  ),
  HttpRouter.get("/custom", HttpServerResponse.text("ok").pipe(HttpMiddleware.rateLimit(Api, byFunctions)))
)

// ApiRateLimit and Idempotent again (this API's Layer implements them with tenants), and a third
class CustomRateLimit extends HttpApiMiddleware.Tag<CustomRateLimit>()("CustomRateLimit", {
  failure: HttpMiddleware.RateLimitFailure
}) {}

class TenantApi extends HttpApi.make("tenants").add(
  HttpApiGroup.make("main")
    .add(HttpApiEndpoint.get("limited", "/limited").addSuccess(Schema.String).middleware(ApiRateLimit))
    .add(HttpApiEndpoint.post("hooks", "/hooks").addSuccess(Schema.String).middleware(Idempotent))
    .add(HttpApiEndpoint.get("custom", "/custom").addSuccess(Schema.String).middleware(CustomRateLimit))
) {}

const TenantApiLive = HttpApiBuilder.api(TenantApi).pipe(
  Layer.provide(
    HttpApiBuilder.group(TenantApi, "main", (handlers) =>
      handlers
        .handle("limited", () => Effect.succeed("ok"))
        .handle("hooks", () => Effect.succeed("received"))
        .handle("custom", () => Effect.succeed("ok"))
    )
  ),
  Layer.provide(Layer.effect(ApiRateLimit, HttpMiddleware.rateLimitApi(Api, byHeaders))),
  Layer.provide(Layer.effect(Idempotent, HttpMiddleware.replayGuardApi(Hooks, nonceByHeaders))),
  Layer.provide(Layer.effect(CustomRateLimit, HttpMiddleware.rateLimitApi(Api, byFunctions)))
)

const LONG_TENANT = "t".repeat(300)

/** [path, headers, the 400's message] */
const badRequests: ReadonlyArray<readonly [string, Record<string, string>, string]> = [
  ["/limited", {}, `missing rate limit subject (header "x-api-key")`],
  ["/limited", { "x-api-key": "k" }, `missing tenant (header "x-tenant-id")`],
  ["/limited", { "x-api-key": "k", "x-tenant-id": "" }, `missing tenant (header "x-tenant-id")`],
  [
    "/limited",
    { "x-api-key": "k", "x-tenant-id": LONG_TENANT },
    `invalid tenant (header "x-tenant-id"): tenant id is longer than 256 characters`
  ],
  ["/hooks", { "x-tenant-id": "acme" }, `missing nonce (header "webhook-id")`],
  [
    "/hooks",
    { "webhook-id": "n".repeat(1025), "x-tenant-id": "acme" },
    `invalid nonce (header "webhook-id"): nonce is longer than 1024 characters`
  ],
  ["/hooks", { "webhook-id": "evt_1" }, `missing tenant (header "x-tenant-id")`],
  [
    "/hooks",
    { "webhook-id": "evt_1", "x-tenant-id": LONG_TENANT },
    `invalid tenant (header "x-tenant-id"): tenant id is longer than 256 characters`
  ],
  ["/custom", { "x-tenant-id": "acme" }, "missing rate limit subject"],
  ["/custom", { "x-api-key": "k" }, "missing tenant"],
  [
    "/custom",
    { "x-api-key": "k", "x-tenant-id": "", "x-cost": "1" },
    "invalid tenant: tenant id must be a non-empty string"
  ],
  ["/custom", { "x-api-key": "k", "x-tenant-id": "acme" }, "missing cost"],
  [
    "/custom",
    { "x-api-key": "k", "x-tenant-id": "acme", "x-cost": "4" },
    "invalid cost: cost is larger than the limit (3)"
  ],
  [
    "/custom",
    { "x-api-key": "k", "x-tenant-id": "acme", "x-cost": "1.5" },
    "invalid cost: cost must be a positive integer"
  ]
]

describe("HttpMiddleware: 400s", () => {
  const tenantFlavours = [
    {
      name: "HttpRouter middleware",
      serve: () => serveApp(tenantRouter.pipe(HttpMiddleware.failClosed), localOnly()),
      body: (message: string) => ({ error: message })
    },
    {
      name: "HttpApi middleware",
      serve: () =>
        Effect.map(
          Layer.build(
            HttpApiBuilder.serve().pipe(
              Layer.provide(TenantApiLive),
              Layer.provide(localOnly()),
              Layer.provideMerge(NodeServer)
            )
          ),
          baseUrlOf
        ),
      body: (message: string) => ({ _tag: "RequestInvalid", message })
    }
  ] as const

  for (const flavour of tenantFlavours) {
    it.scopedLive(`${flavour.name}: one message for each missing or invalid subject, nonce and tenant`, () =>
      Effect.gen(function* () {
        const base = yield* flavour.serve()
        for (const [path, headers, message] of badRequests) {
          const reply = yield* request(`${base}${path}`, { method: path === "/hooks" ? "POST" : "GET", headers })
          expect({ path, headers: Object.keys(headers), status: reply.status, body: JSON.parse(reply.body) }).toEqual({
            path,
            headers: Object.keys(headers),
            status: 400,
            body: flavour.body(message)
          })
          // the value the request carried is never repeated
          expect(reply.body).not.toContain(LONG_TENANT)
          expect(reply.body).not.toContain("nnnnnnnn")
        }
        // nothing was consumed or claimed by the refused requests
        const allowed = yield* request(`${base}/limited`, { headers: { "x-api-key": "k", "x-tenant-id": "acme" } })
        expect(allowed.status).toBe(200)
        expect(allowed.headers.get("ratelimit-remaining")).toBe(String(LIMIT - 1))
        const claimed = yield* request(`${base}/hooks`, {
          method: "POST",
          headers: { "webhook-id": "evt_1", "x-tenant-id": "acme" }
        })
        expect(claimed.status).toBe(200)
      })
    )
  }

  it("header() refuses what is not a header name, when the middleware is made", () => {
    expect(() => HttpMiddleware.header("x tenant")).toThrow(/header name/)
    expect(() => HttpMiddleware.header("")).toThrow(/header name/)
  })
})

describe("HttpMiddleware.serve", () => {
  it.scopedLive(
    "serves with failClosed applied: 503 with Retry-After under an outage, where HttpServer.serve gives 500",
    () =>
      Effect.gen(function* () {
        const serveWith = (layer: Layer.Layer<never, never, HttpServer.HttpServer | DistributedCache>) =>
          Effect.map(
            Layer.build(layer.pipe(Layer.provide(TestCache.Unavailable), Layer.provideMerge(NodeServer))),
            baseUrlOf
          )
        const safe = yield* serveWith(HttpMiddleware.serve(routes))
        const tuned = yield* serveWith(routes.pipe(HttpMiddleware.serve({ retryAfter: "2500 millis" })))
        const unsafe = yield* serveWith(HttpServer.serve(routes))
        for (const [base, retryAfter] of [
          [safe, "1"],
          [tuned, "3"]
        ] as const) {
          for (const reply of [
            yield* limited(base, "k1"),
            yield* hook(base, "evt_1"),
            yield* request(`${base}/note`)
          ]) {
            expect(reply.status).toBe(503)
            expect(reply.headers.get("retry-after")).toBe(retryAfter)
            expect(JSON.parse(reply.body)).toEqual({ error: "service temporarily unavailable" })
            expectNoInternals(reply)
          }
        }
        expect((yield* limited(unsafe, "k1")).status).toBe(500)
      }).pipe(quiet)
  )

  it("types: the Layer needs the HttpServer and the app's services, not the request; errors are the app's own", () => {
    const layer = HttpMiddleware.serve(routes)
    expectTypeOf(layer).toEqualTypeOf<Layer.Layer<never, never, HttpServer.HttpServer | DistributedCache>>()
    expectTypeOf(routes.pipe(HttpMiddleware.serve())).toEqualTypeOf(layer)
  })
})
