/**
 * An HTTP service whose security state lives in Redis and fails closed:
 *
 * - `GET /api/hello` is rate limited per client (sliding window): 429 with `Retry-After` when
 *   the client is over its budget.
 * - `POST /webhooks` accepts signed webhook deliveries (HMAC-SHA256 over `id.timestamp.body`,
 *   timestamps within 5 minutes) with 202, and refuses a delivery id it has already accepted,
 *   on any node: 409.
 * - When Redis is unavailable, both answer 503. Never 200 or 202: a request is not let through
 *   because the shared state that would have refused it could not be consulted.
 *
 * The app is served with `HttpMiddleware.serve`, which is `HttpServer.serve` with
 * `HttpMiddleware.failClosed` applied: an outage is a 503 with `Retry-After`, not an empty 500.
 * The guide is docs/http.md.
 *
 * Run it against a Redis:
 *
 *   REDIS_URL=redis://127.0.0.1:6379 WEBHOOK_SECRET=change-me PORT=3000 \
 *     npx tsx --conditions=source examples/http-server.ts
 *
 *   curl -i http://127.0.0.1:3000/api/hello -H 'x-api-key: k1'
 */
import { createHmac, timingSafeEqual } from "node:crypto"
import { createServer } from "node:http"
import { resolve } from "node:path"
import { pathToFileURL } from "node:url"
import { Headers, type HttpApp, HttpRouter, HttpServer, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Clock, Config, Duration, Effect, Layer, Option, Redacted } from "effect"
import { HttpMiddleware, RateLimiter, RedisClient, ReplayGuard, StrictDistributed } from "effect-failclosed"

export interface AppOptions {
  /** the shared secret webhook senders sign with */
  readonly webhookSecret: Redacted.Redacted<string>
  /** requests per client and window on /api/hello (default 10) */
  readonly apiLimit?: number | undefined
  /** default 1 minute */
  readonly apiWindow?: Duration.DurationInput | undefined
}

/** how far a webhook timestamp may be from this server's clock */
export const WEBHOOK_TOLERANCE = Duration.minutes(5)

/**
 * The signature a sender puts in `webhook-signature`: `v1=<hex HMAC-SHA256 of id.timestamp.body>`.
 */
export const signWebhook = (secret: Redacted.Redacted<string>, id: string, timestamp: number, body: string): string =>
  "v1=" + createHmac("sha256", Redacted.value(secret)).update(`${id}.${timestamp}.${body}`).digest("hex")

const json = (status: number, body: unknown) => HttpServerResponse.unsafeJson(body, { status })

/**
 * Who a request counts against: its API key when it carries one (a real service authenticates
 * the key before this point), otherwise the peer address. A header that clients choose freely
 * must never be the only key, or every request could claim to be a new client.
 */
const clientOf = (request: HttpServerRequest.HttpServerRequest) =>
  Effect.succeed(
    Option.match(Headers.get(request.headers, "x-api-key").pipe(Option.filter((key) => key !== "")), {
      onSome: (key) => "key:" + key,
      onNone: () => "ip:" + Option.getOrElse(request.remoteAddress, () => "unknown")
    })
  )

const signatureMatches = (expected: string, given: string): boolean => {
  const a = Buffer.from(expected)
  const b = Buffer.from(given)
  return a.length === b.length && timingSafeEqual(a, b)
}

/**
 * Answers 400 or 401 unless the request is a signed delivery within the tolerance: only a
 * verified delivery reaches the replay guard, so nobody can burn ids they cannot sign.
 */
const verifyWebhook =
  (secret: Redacted.Redacted<string>) =>
  <E, R>(app: HttpApp.Default<E, R>) =>
    Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const id = request.headers["webhook-id"]
      const timestamp = Number(request.headers["webhook-timestamp"])
      const signature = request.headers["webhook-signature"]
      if (!id || !signature || !Number.isSafeInteger(timestamp)) {
        return json(400, { error: "webhook-id, webhook-timestamp and webhook-signature are required" })
      }
      const now = yield* Clock.currentTimeMillis
      if (Math.abs(now - timestamp * 1000) > Duration.toMillis(WEBHOOK_TOLERANCE)) {
        return json(400, { error: "timestamp outside the tolerance" })
      }
      const body = yield* Effect.orElseSucceed(request.text, () => undefined)
      if (body === undefined) return json(400, { error: "unreadable body" })
      if (!signatureMatches(signWebhook(secret, id, timestamp, body), signature)) {
        return json(401, { error: "bad signature" })
      }
      return yield* app
    })

/**
 * The routes. They need a `DistributedCache`: the mode Layer provided decides what a Redis
 * outage means. Their errors include `CacheBackendUnavailable`: serve them with
 * `HttpMiddleware.serve` (as `makeServer` does), which answers it with 503.
 */
export const makeApp = (options: AppOptions) => {
  const Api = RateLimiter.make({
    name: "http-api",
    limit: options.apiLimit ?? 10,
    window: options.apiWindow ?? "1 minute",
    algorithm: "sliding-window"
  })
  // a delivery is accepted while its timestamp is within ±tolerance, so its id must be
  // remembered for twice the tolerance to refuse every replay of it
  const Deliveries = ReplayGuard.make({ name: "http-webhooks", window: Duration.times(WEBHOOK_TOLERANCE, 2) })

  const hello = json(200, { hello: "world" }).pipe(HttpMiddleware.rateLimit(Api, { subject: clientOf }))

  const webhook = Effect.map(HttpServerRequest.HttpServerRequest, (request) =>
    json(202, { received: request.headers["webhook-id"] })
  ).pipe(
    HttpMiddleware.replayGuard(Deliveries, { nonce: HttpMiddleware.header("webhook-id") }),
    verifyWebhook(options.webhookSecret)
  )

  return HttpRouter.empty.pipe(HttpRouter.get("/api/hello", hello), HttpRouter.post("/webhooks", webhook))
}

/**
 * The app served by Node's HTTP server on `host:port` (port 0: any free port; read it from the
 * `HttpServer` service's `address`). Still needs a `DistributedCache`.
 */
export const makeServer = (options: AppOptions & { readonly port: number; readonly host?: string | undefined }) =>
  makeApp(options).pipe(
    HttpMiddleware.serve(),
    Layer.provideMerge(NodeHttpServer.layer(createServer, { port: options.port, host: options.host ?? "127.0.0.1" }))
  )

/** `PORT` (default 3000), `WEBHOOK_SECRET` (required), `REDIS_URL` & co. from the environment */
export const MainLive = Layer.unwrapEffect(
  Effect.gen(function* () {
    const port = yield* Config.port("PORT").pipe(Config.withDefault(3000))
    const webhookSecret = yield* Config.redacted("WEBHOOK_SECRET")
    return makeServer({ port, webhookSecret }).pipe(HttpServer.withLogAddress)
  })
).pipe(Layer.provide(StrictDistributed), Layer.provide(RedisClient.layerConfig()))

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href

if (isMain) {
  NodeRuntime.runMain(Layer.launch(MainLive))
}
