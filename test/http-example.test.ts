import { type ChildProcess, spawn } from "node:child_process"
import * as net from "node:net"
import { HttpBody, HttpClient, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Context, Duration, Effect, Layer, LogLevel, Logger, Redacted } from "effect"
import {
  type DistributedCache,
  HttpMiddleware,
  LocalOnly,
  RedisClient,
  strictDistributed,
  TestCache
} from "effect-failclosed"
import { makeApp, makeServer, signWebhook } from "../examples/http-server.js"
import { type RedisServer, redisServer } from "./support/RedisServer.js"

const SECRET = Redacted.make("test-webhook-secret")

/** the example app on a free loopback port, against `redis`, as one "node" */
const serve = (redis: RedisServer, apiLimit = 3) =>
  Effect.gen(function* () {
    const context = yield* Layer.build(
      makeServer({ port: 0, webhookSecret: SECRET, apiLimit, apiWindow: "1 minute" }).pipe(
        Layer.provide(
          strictDistributed({ cooldown: "200 millis" }).pipe(
            Layer.provide(RedisClient.layer({ url: redis.url, commandTimeout: "200 millis" }))
          )
        )
      )
    )
    const address = Context.get(context, HttpServer.HttpServer).address
    if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
    expect(address.hostname).toBe("127.0.0.1")
    return `http://127.0.0.1:${address.port}`
  })

interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly body: string
}

const request = (url: string, init?: RequestInit): Effect.Effect<Reply> =>
  Effect.promise(async () => {
    const response = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) })
    return { status: response.status, headers: response.headers, body: await response.text() }
  })

const hello = (base: string, apiKey?: string) =>
  request(`${base}/api/hello`, apiKey === undefined ? {} : { headers: { "x-api-key": apiKey } })

const deliver = (
  base: string,
  id: string,
  options: { readonly body?: string; readonly timestamp?: number; readonly signature?: string } = {}
) => {
  const body = options.body ?? JSON.stringify({ type: "invoice.paid", id })
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000)
  return request(`${base}/webhooks`, {
    method: "POST",
    body,
    headers: {
      "content-type": "application/json",
      "webhook-id": id,
      "webhook-timestamp": String(timestamp),
      "webhook-signature": options.signature ?? signWebhook(SECRET, id, timestamp, body)
    }
  })
}

/** a signed delivery through an `HttpClient` (the one of `NodeHttpServer.layerTest`) */
const deliverWith = (client: HttpClient.HttpClient, id: string) => {
  const timestamp = Math.floor(Date.now() / 1000)
  const body = JSON.stringify({ type: "invoice.paid", id })
  return client.post("/webhooks", {
    body: HttpBody.text(body, "application/json"),
    headers: {
      "webhook-id": id,
      "webhook-timestamp": String(timestamp),
      "webhook-signature": signWebhook(SECRET, id, timestamp, body)
    }
  })
}

/** the example app as `makeServer` serves it, on `NodeHttpServer.layerTest`, with `cache` */
const serveTest = (cache: Layer.Layer<DistributedCache>) =>
  HttpMiddleware.serve(makeApp({ webhookSecret: SECRET })).pipe(
    Layer.provide(cache),
    Layer.provideMerge(NodeHttpServer.layerTest)
  )

const quiet = Logger.withMinimumLogLevel(LogLevel.Error)

describe("examples/http-server.ts", () => {
  it.scopedLive("limits each client: 200 within the budget, then 429 with Retry-After", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const [a, b] = [yield* serve(redis), yield* serve(redis)]
      // the budget is shared by both servers: 2 requests on one, 1 on the other, then 429 on either
      const ok = [yield* hello(a, "k1"), yield* hello(b, "k1"), yield* hello(a, "k1")]
      expect(ok.map((r) => r.status)).toEqual([200, 200, 200])
      expect(ok.map((r) => r.headers.get("ratelimit-remaining"))).toEqual(["2", "1", "0"])
      for (const base of [a, b]) {
        const limited = yield* hello(base, "k1")
        expect(limited.status).toBe(429)
        const retryAfter = Number(limited.headers.get("retry-after"))
        expect(retryAfter).toBeGreaterThanOrEqual(59)
        expect(retryAfter).toBeLessThanOrEqual(60)
      }
      // other clients have their own budgets: another key, and no key (the peer address)
      expect((yield* hello(b, "k2")).status).toBe(200)
      expect((yield* hello(a)).status).toBe(200)
    })
  )

  it.scopedLive("accepts a signed webhook delivery once and answers 409 to its replay on any node", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const [a, b] = [yield* serve(redis), yield* serve(redis)]
      const first = yield* deliver(a, "evt_1")
      expect(first.status).toBe(202)
      expect(JSON.parse(first.body)).toEqual({ received: "evt_1" })
      expect((yield* deliver(a, "evt_1")).status).toBe(409)
      expect((yield* deliver(b, "evt_1")).status).toBe(409)
      // concurrent deliveries of one id to both nodes: exactly one is accepted
      const racing = yield* Effect.forEach(
        Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? a : b)),
        (base) => deliver(base, "evt_2"),
        { concurrency: "unbounded" }
      )
      expect(racing.map((r) => r.status).sort()).toEqual([202, ...Array.from({ length: 15 }, () => 409)])
      // a forged, stale or unsigned delivery is refused without burning its id
      expect((yield* deliver(a, "evt_3", { signature: "v1=" + "0".repeat(64) })).status).toBe(401)
      const stale = Math.floor(Date.now() / 1000) - 600
      expect((yield* deliver(a, "evt_3", { timestamp: stale })).status).toBe(400)
      expect(
        (yield* request(`${a}/webhooks`, { method: "POST", body: "{}", headers: { "webhook-id": "evt_3" } })).status
      ).toBe(400)
      expect((yield* deliver(b, "evt_3")).status).toBe(202)
    })
  )

  it.scopedLive("answers 503, never 200 or 202, while Redis is down, and recovers when it is back", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const base = yield* serve(redis)
      expect((yield* hello(base, "k1")).status).toBe(200)
      expect((yield* deliver(base, "evt_1")).status).toBe(202)
      yield* Effect.promise(() => redis.kill())
      for (let i = 0; i < 3; i++) {
        const limited = yield* hello(base, "k1")
        expect(limited.status).toBe(503)
        expect(limited.headers.get("retry-after")).toBe("1")
        // a delivery that has never been seen is not accepted either: nobody can tell
        expect((yield* deliver(base, `evt_new_${i}`)).status).toBe(503)
        expect((yield* deliver(base, "evt_1")).status).toBe(503)
        yield* Effect.sleep(Duration.millis(250)) // past the cooldown: the next call probes Redis again
      }
      yield* Effect.promise(() => redis.restart())
      // the restarted Redis is empty: the budget and the delivery ids start afresh
      yield* Effect.sleep(Duration.millis(250))
      let status = 0
      for (let i = 0; i < 20 && status !== 200; i++) {
        status = (yield* hello(base, "k1")).status
        if (status !== 200) yield* Effect.sleep(Duration.millis(100))
      }
      expect(status).toBe(200)
    }).pipe(quiet)
  )

  // the recipe of docs/testing.md: the app, served as makeServer serves it, on NodeHttpServer.layerTest
  it.live("under TestCache.Unavailable the limiter answers 503, not 200, and the webhook guard 503, not 202", () =>
    Effect.gen(function* () {
      const client = yield* HttpClient.HttpClient
      const limited = yield* client.get("/api/hello", { headers: { "x-api-key": "k1" } })
      expect(limited.status).toBe(503)
      expect(limited.headers["retry-after"]).toBe("1")
      expect(yield* limited.json).toEqual({ error: "service temporarily unavailable" })
      const delivered = yield* deliverWith(client, "evt_1")
      expect(delivered.status).toBe(503)
    }).pipe(Effect.provide(serveTest(TestCache.Unavailable)))
  )

  it.live("under LocalOnly the same requests answer 200 and 202", () =>
    Effect.gen(function* () {
      const client = yield* HttpClient.HttpClient
      expect((yield* client.get("/api/hello", { headers: { "x-api-key": "k1" } })).status).toBe(200)
      const delivered = yield* deliverWith(client, "evt_1")
      expect(delivered.status).toBe(202)
    }).pipe(Effect.provide(serveTest(LocalOnly)))
  )

  it.scopedLive("serves on PORT at 127.0.0.1 when run directly, with StrictDistributed from the environment", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const port = yield* Effect.promise(freePort)
      yield* Effect.acquireRelease(
        Effect.sync(() =>
          spawn(process.execPath, ["--conditions=source", "--import", "tsx", "examples/http-server.ts"], {
            env: { ...process.env, PORT: String(port), REDIS_URL: redis.url, WEBHOOK_SECRET: Redacted.value(SECRET) },
            stdio: ["ignore", "pipe", "pipe"]
          })
        ),
        (child) => Effect.promise(() => stop(child))
      )
      const base = `http://127.0.0.1:${port}`
      let reply: Reply | undefined
      for (let i = 0; i < 150 && reply === undefined; i++) {
        reply = yield* Effect.promise(() =>
          fetch(`${base}/api/hello`, { headers: { "x-api-key": "direct" } }).then(
            async (r) => ({ status: r.status, headers: r.headers, body: await r.text() }),
            () => undefined
          )
        )
        if (reply === undefined) yield* Effect.sleep(Duration.millis(100))
      }
      expect(reply?.status).toBe(200)
      expect((yield* deliver(base, "evt_direct")).status).toBe(202)
      expect((yield* deliver(base, "evt_direct")).status).toBe(409)
    })
  )
})

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject()))
    })
  })

const stop = (child: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000)
    child.once("exit", () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill("SIGTERM")
  })
