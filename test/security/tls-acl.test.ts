/**
 * Hostile networks: `rediss://` against a redis-server TLS port with certificates the tests generate (openssl, a
 * throw-away CA), certificate verification on by default, ACL users with credentials read through Config (the
 * password Redacted), and fail-closed startup for every way the handshake or the authentication can go wrong.
 * No password and no certificate or key material appears in any error, log entry, event or span.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import {
  Cause,
  Config,
  ConfigProvider,
  Duration,
  Effect,
  Exit,
  Layer,
  Logger,
  Option,
  Redacted,
  Schema,
  Tracer
} from "effect"
import {
  CacheBackendUnavailable,
  type DistributedCache,
  explicitDegraded,
  Keyspace,
  RateLimiter,
  RedisClient,
  RedisClientConfig,
  type RedisClientOptions,
  ReplayGuard,
  SecurityEvent,
  strictDistributed
} from "effect-failclosed"
import { type Certificates, makeCertificates, type TlsRedis, tlsRedisServer } from "../support/tls.js"

let certs: Certificates
beforeAll(async () => {
  certs = await makeCertificates()
}, 30_000)
afterAll(async () => {
  await certs?.cleanup()
})

const PASSWORD = "tls-Acl/pa$$w0rd:with@signs"
const WRONG = "not-the-Pa55word/at@all"
const ADMIN = ["--user", "admin", "--pass", "admin-pw", "--no-auth-warning"]
/** every command the library sends, directly or from its scripts (documented in docs/security.md) */
const LEAST = [
  "resetchannels",
  "-@all",
  ...["ping", "info", "get", "set", "unlink", "scan", "evalsha", "eval"].map((c) => `+${c}`),
  ...["time", "hmget", "hset", "pexpire", "zadd", "zcard", "zrange", "zrangebyscore", "zremrangebyscore"].map(
    (c) => `+${c}`
  )
]

const fast = {
  commandTimeout: Duration.millis(1_000),
  connectTimeout: Duration.millis(1_000),
  startupTimeout: Duration.millis(1_000),
  maxReconnectDelay: Duration.millis(200)
} satisfies RedisClientOptions

const Items = Keyspace.make({
  name: "items",
  key: Schema.String,
  value: Schema.Struct({ n: Schema.Number }),
  timeToLive: "1 minute"
})

// --- everything a caller or an operator could see ------------------------------------------------------------------

interface Observed {
  readonly texts: Array<string>
  readonly events: Array<SecurityEvent>
}

const isSecurityEvent = Schema.is(SecurityEvent)

const describeValue = (observed: Observed, value: unknown): void => {
  if (Exit.isExit(value)) {
    if (Exit.isFailure(value)) {
      observed.texts.push(Cause.pretty(value.cause), JSON.stringify(value.cause))
      for (const error of Cause.failures(value.cause)) describeValue(observed, error)
      for (const defect of Cause.defects(value.cause)) describeValue(observed, defect)
    } else {
      observed.texts.push(String(JSON.stringify(value.value)))
    }
    return
  }
  if (value instanceof Error) {
    observed.texts.push(value.message, String(value), value.stack ?? "", JSON.stringify(value))
    return
  }
  observed.texts.push(String(JSON.stringify(value)), String(value))
}

/** a Tracer that keeps every span's name, attributes, events and end */
const recordingTracer = (observed: Observed): Tracer.Tracer =>
  Tracer.make({
    span: (name, parent, context, links, startTime, kind) => {
      const attributes = new Map<string, unknown>()
      let status: Tracer.SpanStatus = { _tag: "Started", startTime }
      const span: Tracer.Span = {
        _tag: "Span",
        name,
        spanId: Math.random().toString(16).slice(2),
        traceId: "trace",
        parent,
        context,
        get status() {
          return status
        },
        attributes,
        links: [...links],
        sampled: true,
        kind,
        end: (endTime, exit) => {
          status = { _tag: "Ended", startTime, endTime, exit }
          observed.texts.push(`span ${name}: ${JSON.stringify([...attributes])}`)
          describeValue(observed, exit)
        },
        attribute: (key, value) => {
          attributes.set(key, value)
        },
        event: (eventName, _time, eventAttributes) => {
          observed.texts.push(`span event ${eventName}: ${JSON.stringify(eventAttributes ?? {})}`)
        },
        addLinks: () => {}
      }
      return span
    },
    context: (f) => f()
  })

/** runs `self` in a span, with a Logger and a Tracer that record everything into `observed` */
const observing =
  (observed: Observed) =>
  <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => {
    const logger = Logger.make((options) => {
      observed.texts.push(Logger.jsonLogger.log(options), Logger.logfmtLogger.log(options))
      for (const part of Array.isArray(options.message) ? options.message : [options.message]) {
        if (isSecurityEvent(part)) observed.events.push(part)
      }
    })
    return self.pipe(
      Effect.withSpan("test"),
      Effect.withTracer(recordingTracer(observed)),
      Effect.provide(Logger.replace(Logger.defaultLogger, logger))
    )
  }

const expectNoSecret = (observed: Observed, ...secrets: Array<string>) => {
  expect(observed.texts.length).toBeGreaterThan(0)
  const forbidden = [
    ...secrets.flatMap((s) => [s, encodeURIComponent(s)]),
    ...certs.material,
    "PRIVATE KEY",
    "BEGIN CERTIFICATE"
  ]
  for (const text of observed.texts) {
    for (const secret of forbidden) expect(text.includes(secret), `${JSON.stringify(secret)} in ${text}`).toBe(false)
  }
}

// --- helpers -------------------------------------------------------------------------------------------------------

const strict = (client: Layer.Layer<RedisClient, unknown>) =>
  strictDistributed({ cooldown: "200 millis" }).pipe(Layer.provide(client))
const degraded = (client: Layer.Layer<RedisClient, unknown>) =>
  explicitDegraded({ cooldown: "200 millis" }).pipe(Layer.provide(client))

/** builds a strict cache that must fail at startup; returns its CacheBackendUnavailable */
const strictStartupFailure = (client: Layer.Layer<RedisClient, unknown>, observed: Observed) =>
  Effect.gen(function* () {
    const exit = yield* Effect.exit(Effect.scoped(Layer.build(strict(client))))
    describeValue(observed, exit)
    expect(Exit.isFailure(exit)).toBe(true)
    const error = Option.getOrThrow(Cause.failureOption((exit as Exit.Failure<unknown, unknown>).cause))
    expect(error).toBeInstanceOf(CacheBackendUnavailable)
    const e = error as CacheBackendUnavailable
    expect(e.mode).toBe("StrictDistributed")
    expect(e.operation).toBe("startup")
    return e
  })

/** builds a degraded cache that must come up node-local: one startup event, results marked degraded */
const degradedStartsDegraded = (client: Layer.Layer<RedisClient, unknown>, observed: Observed) =>
  Effect.scoped(
    Effect.gen(function* () {
      const before = observed.events.length
      const context = yield* Layer.build(degraded(client))
      const run = <A, E>(self: Effect.Effect<A, E, DistributedCache>) => Effect.exit(Effect.provide(self, context))
      const set = yield* run(Items.set("k", { n: 1 }))
      const got = yield* run(Items.get("k"))
      describeValue(observed, set)
      describeValue(observed, got)
      expect(got).toEqual(
        Exit.succeed(
          Option.some({ value: { n: 1 }, backend: "local_degraded", degraded: true, near: false, stale: false })
        )
      )
      expect(observed.events.slice(before).map((e) => e.event)).toEqual(["BACKEND_UNAVAILABLE_AT_STARTUP"])
    })
  )

/** builds the strict cache and round-trips an entry through it; `whileOpen` runs before the cache is closed */
const roundTrip = <A>(
  client: Layer.Layer<RedisClient, unknown>,
  observed: Observed,
  whileOpen: Effect.Effect<A> = Effect.void as Effect.Effect<A>
) =>
  Effect.scoped(
    Effect.gen(function* () {
      const context = yield* Layer.build(strict(client))
      const run = <A, E>(self: Effect.Effect<A, E, DistributedCache>) => Effect.exit(Effect.provide(self, context))
      expect(yield* run(Items.set("k", { n: 7 }))).toEqual(Exit.void)
      const got = yield* run(Items.get("k"))
      describeValue(observed, got)
      expect(got).toEqual(
        Exit.succeed(Option.some({ value: { n: 7 }, backend: "redis", degraded: false, near: false, stale: false }))
      )
      return yield* whileOpen
    })
  )

/** ACL: an admin for the harness, the application's user, and the default user switched off */
const withUsers = (tls: TlsRedis) =>
  Effect.promise(async () => {
    await tls.server.command("ACL", "SETUSER", "admin", "on", ">admin-pw", "~*", "&*", "+@all")
    await tls.server.command("ACL", "SETUSER", "cache", "on", `>${PASSWORD}`, "~fc:*", "+@all", "-@dangerous")
    await tls.server.command(...ADMIN, "ACL", "SETUSER", "default", "off")
  })

const fromConfig = (tls: TlsRedis, env: Record<string, string>) =>
  RedisClient.layerConfig(
    Config.map(RedisClientConfig, (options) => ({ ...options, ...fast, tls: { ca: certs.ca } }))
  ).pipe(
    Layer.provide(
      Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries({ REDIS_URL: tls.tlsUrl, ...env }))))
    )
  )

// --- tests ---------------------------------------------------------------------------------------------------------

describe("TLS", () => {
  it.scopedLive("rediss:// with the generated CA: both Redis modes start and round-trip over TLS", () =>
    Effect.gen(function* () {
      const tls = yield* tlsRedisServer(certs)
      const observed: Observed = { texts: [], events: [] }
      const client = RedisClient.layer({ url: tls.tlsUrl, tls: { ca: certs.ca }, ...fast })
      yield* observing(observed)(roundTrip(client, observed))
      yield* observing(observed)(
        Effect.scoped(
          Effect.gen(function* () {
            const context = yield* Layer.build(degraded(client))
            const got = yield* Effect.provide(Effect.zipRight(Items.set("d", { n: 1 }), Items.get("d")), context)
            expect(got).toEqual(
              Option.some({ value: { n: 1 }, backend: "redis", degraded: false, near: false, stale: false })
            )
          })
        )
      )
      expect(observed.events).toEqual([])
      // the entries went over the TLS port into this server
      expect(Number(yield* Effect.promise(() => tls.server.command("DBSIZE")))).toBe(2)
      expectNoSecret(observed)
    })
  )

  it.scopedLive("plain redis:// against the TLS port fails closed at startup", () =>
    Effect.gen(function* () {
      const tls = yield* tlsRedisServer(certs)
      const observed: Observed = { texts: [], events: [] }
      const url = `redis://127.0.0.1:${tls.tlsPort}`
      yield* observing(observed)(strictStartupFailure(RedisClient.layer({ url, ...fast }), observed))
      expectNoSecret(observed)
    })
  )

  it.scopedLive("verification is on by default: without the CA, startup fails closed (and degraded says so)", () =>
    Effect.gen(function* () {
      const tls = yield* tlsRedisServer(certs)
      const observed: Observed = { texts: [], events: [] }
      const client = RedisClient.layer({ url: tls.tlsUrl, ...fast })
      const error = yield* observing(observed)(strictStartupFailure(client, observed))
      expect(error.reason).toMatch(/certificate/i)
      expect(error.message).toMatch(/ExplicitDegraded/)
      yield* observing(observed)(degradedStartsDegraded(client, observed))
      expect(observed.events[0]!.detail).toMatch(/certificate/i)
      // the control: the same connection with verification explicitly switched off does connect
      yield* observing(observed)(
        roundTrip(RedisClient.layer({ url: tls.tlsUrl, tls: { rejectUnauthorized: false }, ...fast }), observed)
      )
      expectNoSecret(observed)
    })
  )

  it.scopedLive("a CA that did not sign the server's certificate fails closed at startup", () =>
    Effect.gen(function* () {
      const tls = yield* tlsRedisServer(certs)
      const observed: Observed = { texts: [], events: [] }
      const client = RedisClient.layer({ url: tls.tlsUrl, tls: { ca: certs.otherCa }, ...fast })
      const error = yield* observing(observed)(strictStartupFailure(client, observed))
      expect(error.reason).toMatch(/certificate/i)
      yield* observing(observed)(degradedStartsDegraded(client, observed))
      expectNoSecret(observed)
    })
  )

  it.scopedLive("a certificate issued for another name fails closed at startup, even from the trusted CA", () =>
    Effect.gen(function* () {
      const tls = yield* tlsRedisServer(certs)
      const observed: Observed = { texts: [], events: [] }
      const client = RedisClient.layer({
        url: tls.tlsUrl,
        tls: { ca: certs.ca, servername: "cache.internal.example" },
        ...fast
      })
      const error = yield* observing(observed)(strictStartupFailure(client, observed))
      expect(error.reason).toMatch(/altname|does not match|hostname/i)
      expectNoSecret(observed)
    })
  )
})

describe("ACL over TLS", () => {
  it.scopedLive("username and Redacted password from Config: the connection is the ACL user's", () =>
    Effect.gen(function* () {
      const tls = yield* tlsRedisServer(certs)
      yield* withUsers(tls)
      const observed: Observed = { texts: [], events: [] }
      const env = { REDIS_USERNAME: "cache", REDIS_PASSWORD: PASSWORD }
      // the password is read as a Redacted value: printing the configuration shows no secret
      const options = yield* Effect.withConfigProvider(
        RedisClientConfig,
        ConfigProvider.fromMap(new Map(Object.entries({ REDIS_URL: tls.tlsUrl, ...env })))
      )
      expect(Redacted.isRedacted(options.password)).toBe(true)
      describeValue(observed, options)
      const clients = yield* observing(observed)(
        roundTrip(
          fromConfig(tls, env),
          observed,
          Effect.promise(() => tls.server.command(...ADMIN, "CLIENT", "LIST"))
        )
      )
      // two connections: the cache's, authenticated as the ACL user, and the redis-cli one asking
      expect(clients).toMatch(/user=cache/)
      expect(clients.split("\n").filter((line) => line.includes("user=cache"))).toHaveLength(1)
      expectNoSecret(observed, PASSWORD)
    })
  )

  it.scopedLive("the password is in no error, log, event or span when Redis goes down under a live cache", () =>
    Effect.gen(function* () {
      const tls = yield* tlsRedisServer(certs)
      yield* withUsers(tls)
      const observed: Observed = { texts: [], events: [] }
      const env = { REDIS_USERNAME: "cache", REDIS_PASSWORD: PASSWORD }
      yield* observing(observed)(
        Effect.scoped(
          Effect.gen(function* () {
            const strictContext = yield* Layer.build(strict(fromConfig(tls, env)))
            const degradedContext = yield* Layer.build(degraded(fromConfig(tls, env)))
            yield* Effect.promise(() => tls.server.kill())
            for (const context of [strictContext, degradedContext]) {
              for (const op of [Items.get("k"), Items.set("k", { n: 2 }), Items.invalidate("k"), Items.clear()]) {
                describeValue(
                  observed,
                  yield* Effect.exit(Effect.provide(op as Effect.Effect<unknown, unknown, DistributedCache>, context))
                )
              }
            }
          })
        )
      )
      expect(observed.events.map((e) => e.event)).toContain("BACKEND_UNAVAILABLE_AT_RUNTIME")
      expectNoSecret(observed, PASSWORD)
    })
  )

  it.scopedLive("a least-privilege ACL user (the command list of docs/security.md, keys fc:*) runs every feature", () =>
    Effect.gen(function* () {
      const tls = yield* tlsRedisServer(certs)
      yield* withUsers(tls)
      yield* Effect.promise(() =>
        tls.server.command(...ADMIN, "ACL", "SETUSER", "least", "on", `>${PASSWORD}`, "resetkeys", "~fc:*", ...LEAST)
      )
      const observed: Observed = { texts: [], events: [] }
      const env = { REDIS_USERNAME: "least", REDIS_PASSWORD: PASSWORD }
      yield* observing(observed)(
        Effect.scoped(
          Effect.gen(function* () {
            const context = yield* Layer.build(strict(fromConfig(tls, env)))
            const run = <A, E>(self: Effect.Effect<A, E, DistributedCache>) => Effect.provide(self, context)
            yield* run(Items.set("k", { n: 1 }, { tenant: "t" }))
            expect(yield* run(Items.get("k", { tenant: "t" }))).toEqual(
              Option.some({ value: { n: 1 }, backend: "redis", degraded: false, near: false, stale: false })
            )
            expect((yield* run(Items.getOrCompute("c", Effect.succeed({ n: 2 })))).value).toEqual({ n: 2 })
            expect(yield* run(Items.invalidate("k", { tenant: "t" }))).toBe(true)
            expect(yield* run(Items.clear({ allTenants: true }))).toBe(1)
            for (const algorithm of ["fixed-window", "sliding-window", "token-bucket"] as const) {
              const limiter = RateLimiter.make({ name: algorithm, limit: 1, window: "1 minute", algorithm })
              expect((yield* run(limiter.consume("s"))).allowed).toBe(true)
              expect((yield* run(limiter.consume("s"))).allowed).toBe(false)
            }
            const guard = ReplayGuard.make({ name: "g", window: "1 minute" })
            yield* run(guard.claim("n"))
            expect(Exit.isFailure(yield* Effect.exit(run(guard.claim("n"))))).toBe(true)
          })
        )
      )
      expect(observed.events).toEqual([])
    })
  )

  for (const [what, env, reply] of [
    ["a wrong password", { REDIS_USERNAME: "cache", REDIS_PASSWORD: WRONG }, /WRONGPASS/],
    ["an unknown user", { REDIS_USERNAME: "nobody", REDIS_PASSWORD: PASSWORD }, /WRONGPASS/],
    ["no credentials while the default user is off", {}, /NOAUTH/]
  ] as const) {
    it.scopedLive(`${what} fails closed at startup, and no password appears anywhere`, () =>
      Effect.gen(function* () {
        const tls = yield* tlsRedisServer(certs)
        yield* withUsers(tls)
        const observed: Observed = { texts: [], events: [] }
        const error = yield* observing(observed)(strictStartupFailure(fromConfig(tls, env), observed))
        expect(error.reason).toMatch(reply)
        yield* observing(observed)(degradedStartsDegraded(fromConfig(tls, env), observed))
        expect(observed.events[0]!.detail).toMatch(reply)
        expectNoSecret(observed, PASSWORD, WRONG, "admin-pw")
      })
    )
  }
})
