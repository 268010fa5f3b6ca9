/**
 * Degraded decisions are visible over HTTP: under ExplicitDegraded with its redis-server killed, every response whose
 * rate limit or replay claim was decided node-locally carries `Node-Local-Decision`, in both flavours (HttpRouter and
 * HttpApi middleware), whatever its status; no response decided by Redis carries it.
 */
import { createServer } from "node:http"
import {
  HttpApi,
  HttpApiBuilder,
  HttpApiEndpoint,
  HttpApiGroup,
  HttpApiMiddleware,
  type HttpApp,
  HttpRouter,
  HttpServer,
  HttpServerResponse
} from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Logger, LogLevel, Schema } from "effect"
import { type DistributedCache, explicitDegraded, RedisClient, strictDistributed } from "effect-failclosed"
import * as FailClosedHttpMiddleware from "effect-failclosed/HttpMiddleware"
import * as RateLimiter from "effect-failclosed/RateLimiter"
import * as ReplayGuard from "effect-failclosed/ReplayGuard"
import { type RedisServer, redisServer } from "./support/RedisServer.js"

const HEADER = FailClosedHttpMiddleware.nodeLocalDecisionHeader
const Limit = RateLimiter.make({ name: "nl-api", limit: 2, window: "1 minute", algorithm: "fixed-window" })
const Hooks = ReplayGuard.make({ name: "nl-hooks", window: "1 minute" })
const subject = FailClosedHttpMiddleware.header("x-api-key")
const nonce = FailClosedHttpMiddleware.header("webhook-id")

const routerApp = HttpRouter.empty.pipe(
  HttpRouter.get(
    "/limited",
    HttpServerResponse.text("ok").pipe(FailClosedHttpMiddleware.rateLimit(Limit, { subject }))
  ),
  HttpRouter.post("/hooks", HttpServerResponse.text("ok").pipe(FailClosedHttpMiddleware.replayGuard(Hooks, { nonce }))),
  // both middleware decide one request
  HttpRouter.post(
    "/both",
    HttpServerResponse.text("ok").pipe(
      FailClosedHttpMiddleware.replayGuard(Hooks, { nonce }),
      FailClosedHttpMiddleware.rateLimit(Limit, { subject })
    )
  ),
  FailClosedHttpMiddleware.failClosed
)

class ApiRateLimit extends HttpApiMiddleware.Tag<ApiRateLimit>()("NlRateLimit", {
  failure: FailClosedHttpMiddleware.RateLimitFailure
}) {}
class Idempotent extends HttpApiMiddleware.Tag<Idempotent>()("NlIdempotent", {
  failure: FailClosedHttpMiddleware.ReplayGuardFailure
}) {}
class TestApi extends HttpApi.make("nl").add(
  HttpApiGroup.make("main")
    .add(HttpApiEndpoint.get("limited", "/limited").addSuccess(Schema.String).middleware(ApiRateLimit))
    .add(HttpApiEndpoint.post("hooks", "/hooks").addSuccess(Schema.String).middleware(Idempotent))
    .add(
      HttpApiEndpoint.post("both", "/both").addSuccess(Schema.String).middleware(ApiRateLimit).middleware(Idempotent)
    )
) {}
const ApiLive = HttpApiBuilder.api(TestApi).pipe(
  Layer.provide(
    HttpApiBuilder.group(TestApi, "main", (handlers) =>
      handlers
        .handle("limited", () => Effect.succeed("ok"))
        .handle("hooks", () => Effect.succeed("ok"))
        .handle("both", () => Effect.succeed("ok"))
    )
  ),
  Layer.provide(Layer.effect(ApiRateLimit, FailClosedHttpMiddleware.rateLimitApi(Limit, { subject }))),
  Layer.provide(Layer.effect(Idempotent, FailClosedHttpMiddleware.replayGuardApi(Hooks, { nonce })))
)

type Cache = Layer.Layer<DistributedCache, unknown>
const clientOf = (redis: RedisServer) => RedisClient.layer({ url: redis.url, commandTimeout: "200 millis" })
const degraded = (redis: RedisServer): Cache =>
  explicitDegraded({ cooldown: "5 seconds" }).pipe(Layer.provide(clientOf(redis)))
const strict = (redis: RedisServer): Cache =>
  strictDistributed({ cooldown: "5 seconds" }).pipe(Layer.provide(clientOf(redis)))

const NodeServer = NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })
const baseUrlOf = (context: Context.Context<HttpServer.HttpServer>) => {
  const address = Context.get(context, HttpServer.HttpServer).address
  if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
  return `http://127.0.0.1:${address.port}`
}

const flavours = {
  "HttpRouter middleware": (cache: Cache) =>
    Effect.map(
      Layer.build(
        HttpServer.serve(routerApp as HttpApp.Default<never, DistributedCache>).pipe(
          Layer.provide(cache),
          Layer.provideMerge(NodeServer)
        )
      ),
      baseUrlOf
    ),
  "HttpApi middleware": (cache: Cache) =>
    Effect.map(
      Layer.build(
        HttpApiBuilder.serve().pipe(Layer.provide(ApiLive), Layer.provide(cache), Layer.provideMerge(NodeServer))
      ),
      baseUrlOf
    )
}

interface Reply {
  readonly status: number
  readonly nodeLocal: string | null
}

const send = (url: string, init: RequestInit): Effect.Effect<Reply> =>
  Effect.promise(async () => {
    const response = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) })
    await response.arrayBuffer()
    return { status: response.status, nodeLocal: response.headers.get(HEADER) }
  })
const limited = (base: string, key: string) => send(`${base}/limited`, { headers: { "x-api-key": key } })
const hook = (base: string, id: string) => send(`${base}/hooks`, { method: "POST", headers: { "webhook-id": id } })
const both = (base: string, key: string, id: string) =>
  send(`${base}/both`, { method: "POST", headers: { "x-api-key": key, "webhook-id": id } })

const quiet = Logger.withMinimumLogLevel(LogLevel.None)

describe("the Node-Local-Decision header", () => {
  for (const [flavour, serve] of Object.entries(flavours)) {
    it.scopedLive(`${flavour}: ExplicitDegraded marks every decision taken while Redis is killed, and only those`, () =>
      Effect.gen(function* () {
        const redis = yield* redisServer()
        const base = yield* serve(degraded(redis))
        // Redis decides: no mark, whatever the status
        expect(yield* limited(base, "k1")).toEqual({ status: 200, nodeLocal: null })
        expect(yield* hook(base, "evt_1")).toEqual({ status: 200, nodeLocal: null })
        expect(yield* hook(base, "evt_1")).toEqual({ status: 409, nodeLocal: null })

        yield* Effect.promise(() => redis.kill())
        // the first call after the kill finds Redis unavailable and falls back: marked as every later one
        expect(yield* limited(base, "k1")).toEqual({ status: 200, nodeLocal: "rate-limit" })
        expect(yield* limited(base, "k1")).toEqual({ status: 200, nodeLocal: "rate-limit" })
        // the node-local budget (2) is spent: a 429 decided node-locally is marked too
        expect(yield* limited(base, "k1")).toEqual({ status: 429, nodeLocal: "rate-limit" })
        // a replay Redis would have refused is accepted node-locally, marked; its node-local replay is a marked 409
        expect(yield* hook(base, "evt_1")).toEqual({ status: 200, nodeLocal: "replay-guard" })
        expect(yield* hook(base, "evt_1")).toEqual({ status: 409, nodeLocal: "replay-guard" })
        // two middleware deciding one request node-locally: both named, once each
        const twice = yield* both(base, "k2", "evt_2")
        expect(twice.status).toBe(200)
        expect(twice.nodeLocal?.split(", ").sort()).toEqual(["rate-limit", "replay-guard"])
      }).pipe(quiet)
    )

    it.scopedLive(`${flavour}: StrictDistributed never marks (an outage is a 503, decided by nobody)`, () =>
      Effect.gen(function* () {
        const redis = yield* redisServer()
        const base = yield* serve(strict(redis))
        expect(yield* limited(base, "k1")).toEqual({ status: 200, nodeLocal: null })
        yield* Effect.promise(() => redis.kill())
        expect(yield* limited(base, "k1")).toEqual({ status: 503, nodeLocal: null })
        expect(yield* hook(base, "evt_1")).toEqual({ status: 503, nodeLocal: null })
      }).pipe(quiet)
    )
  }
})
