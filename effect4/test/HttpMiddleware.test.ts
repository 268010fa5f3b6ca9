/**
 * The Effect 4 HTTP middleware answers as the Effect 3 line's does: 429 with retry-after and the ratelimit-* headers,
 * 409 for a replay, 400 naming the missing or invalid input (never its value), 503 with retry-after for an outage.
 * Requests go through Effect 4's own web handler (`HttpEffect.toWebHandler`), no socket.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as HttpEffect from "effect/http/HttpEffect"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import {
  DistributedCache,
  HttpMiddleware,
  localOnly,
  RateLimiter,
  ReplayGuard,
  TestCache
} from "effect-failclosed-effect4"

const Api = RateLimiter.make({ name: "api", limit: 2, window: "1 minute", algorithm: "fixed-window" })
const Webhooks = ReplayGuard.make({ name: "webhooks", window: "5 minutes" })

const handlerOn = (cache: Layer.Layer<DistributedCache>) =>
  Effect.runPromise(
    Effect.map(Layer.build(cache).pipe(Effect.scoped), (context) =>
      HttpEffect.toWebHandler(
        Effect.succeed(HttpServerResponse.text("ok")).pipe(
          HttpMiddleware.replayGuard(Webhooks, { nonce: HttpMiddleware.header("x-webhook-id") }),
          HttpMiddleware.rateLimit(Api, {
            subject: HttpMiddleware.header("x-api-key"),
            tenant: HttpMiddleware.header("x-tenant")
          }),
          HttpMiddleware.failClosed,
          Effect.provideContext(context)
        )
      )
    )
  )

const request = (headers: Record<string, string>) => new Request("http://localhost/hook", { headers })
const body = async (response: Response) => ({
  status: response.status,
  error: response.status === 200 ? undefined : ((await response.json()) as { error: string }).error
})

describe("HttpMiddleware (Effect 4)", () => {
  it("rate-limits with the ratelimit-* headers and a 429, and guards replays with a 409", async () => {
    const handle = await handlerOn(localOnly())
    const first = await handle(request({ "x-api-key": "k1", "x-tenant": "acme", "x-webhook-id": "w1" }))
    assert.strictEqual(first.status, 200)
    assert.strictEqual(first.headers.get("ratelimit-limit"), "2")
    assert.strictEqual(first.headers.get("ratelimit-remaining"), "1")
    assert.strictEqual(first.headers.get("ratelimit-reset"), "60")
    const replay = await handle(request({ "x-api-key": "k1", "x-tenant": "acme", "x-webhook-id": "w1" }))
    assert.deepStrictEqual(await body(replay), { status: 409, error: "request already processed" })
    const denied = await handle(request({ "x-api-key": "k1", "x-tenant": "acme", "x-webhook-id": "w2" }))
    assert.deepStrictEqual(await body(denied), { status: 429, error: "too many requests" })
    assert.strictEqual(denied.headers.get("retry-after"), denied.headers.get("ratelimit-reset"))
    assert.strictEqual(denied.headers.get("ratelimit-remaining"), "0")
  })

  it("answers 400 naming the missing or invalid header, never its value", async () => {
    const handle = await handlerOn(localOnly())
    assert.deepStrictEqual(await body(await handle(request({ "x-tenant": "acme" }))), {
      status: 400,
      error: `missing rate limit subject (header "x-api-key")`
    })
    assert.deepStrictEqual(await body(await handle(request({ "x-api-key": "k" }))), {
      status: 400,
      error: `missing tenant (header "x-tenant")`
    })
    const long = "s".repeat(2000)
    const invalid = await body(await handle(request({ "x-api-key": long, "x-tenant": "acme" })))
    assert.strictEqual(invalid.status, 400)
    assert.include(invalid.error, `invalid rate limit subject (header "x-api-key")`)
    assert.notInclude(invalid.error ?? "", long)
  })

  it("answers 503 with retry-after when Redis is unavailable", async () => {
    const handle = await handlerOn(TestCache.Unavailable)
    const response = await handle(request({ "x-api-key": "k1", "x-tenant": "acme", "x-webhook-id": "w1" }))
    assert.deepStrictEqual(await body(response), { status: 503, error: "service temporarily unavailable" })
    assert.strictEqual(response.headers.get("retry-after"), "1")
  })
})
