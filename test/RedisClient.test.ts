import { describe, expect, it } from "@effect/vitest"
import {
  Cause,
  ConfigProvider,
  Context,
  Duration,
  Effect,
  Exit,
  Layer,
  Logger,
  LogLevel,
  Option,
  Schema,
  Scope
} from "effect"
import {
  CacheBackendUnavailable,
  type DistributedCache,
  explicitDegraded,
  Keyspace,
  RedisClient,
  strictDistributed
} from "effect-failclosed"
import { redisSentinel } from "./support/RedisSentinel.js"
import { freePort, type RedisServer, redisServer } from "./support/RedisServer.js"

const COMMAND_TIMEOUT_MS = 200

const options = (url: string) =>
  ({
    url,
    commandTimeout: Duration.millis(COMMAND_TIMEOUT_MS),
    connectTimeout: Duration.millis(300),
    maxReconnectDelay: Duration.millis(100),
    startupTimeout: Duration.millis(400)
  }) as const

const Items = Keyspace.make({ name: "items", key: Schema.String, value: Schema.Number, timeToLive: "1 minute" })

const timed = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.suspend(() => {
    const start = performance.now()
    return Effect.map(Effect.exit(self), (exit) => [exit, performance.now() - start] as const)
  })

const clientCount = (redis: RedisServer, ...auth: Array<string>) =>
  Effect.promise(() => redis.command(...auth, "CLIENT", "LIST")).pipe(
    Effect.map((list) => list.split("\n").filter((line) => line.includes("addr=")).length)
  )

/** retries until `check` holds (every 20 ms, at most `deadlineMs`), then asserts it once more */
const eventually = (check: Effect.Effect<boolean>, deadlineMs: number) =>
  Effect.gen(function* () {
    const start = performance.now()
    while (!(yield* check) && performance.now() - start < deadlineMs) yield* Effect.sleep("20 millis")
    expect(yield* check).toBe(true)
  })

describe("RedisClient fails fast", () => {
  it.scopedLive("building the client neither fails nor waits when Redis is down", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      yield* Effect.promise(() => redis.kill())
      const [exit, elapsed] = yield* timed(Layer.build(RedisClient.layer(options(redis.url))))
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(elapsed).toBeLessThan(100)
      if (Exit.isSuccess(exit)) expect(Context.get(exit.value, RedisClient).client.status).not.toBe("ready")
    })
  )

  it.scopedLive("no command hangs: refused at once when Redis is down, timed out (backstop) when it is paused", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const service = Context.get(yield* Layer.build(RedisClient.layer(options(redis.url))), RedisClient)
      const client = service.client
      yield* service.awaitReady(Duration.seconds(2))

      redis.pause()
      // a command sent on the client directly is failed by ioredis' own timer, the backstop 2 seconds after the
      // command timeout (cache operations are bounded by the command timeout itself: test/StrictDistributed.test.ts)
      const [paused, pausedMs] = yield* timed(Effect.tryPromise({ try: () => client.get("k"), catch: (e) => e }))
      expect(Exit.isFailure(paused)).toBe(true)
      expect(String(Cause.squash((paused as Exit.Failure<unknown, unknown>).cause))).toMatch(/timed out/)
      expect(pausedMs).toBeGreaterThanOrEqual(COMMAND_TIMEOUT_MS + 2_000 - 20)
      expect(pausedMs).toBeLessThan(COMMAND_TIMEOUT_MS + 2_000 + 100)

      yield* Effect.promise(() => redis.kill())
      // nothing is queued while the client is disconnected: a write fails at once ...
      for (let i = 0; i < 3; i++) {
        const [down, downMs] = yield* timed(
          Effect.tryPromise({ try: () => client.set("written-while-down", "1"), catch: (e) => e })
        )
        expect(Exit.isFailure(down)).toBe(true)
        expect(downMs).toBeLessThan(50)
      }
      // ... and is not sent later, once Redis is back
      yield* Effect.promise(() => redis.restart())
      yield* eventually(
        Effect.sync(() => client.status === "ready"),
        2_000
      )
      expect(yield* Effect.promise(() => client.get("written-while-down"))).toBe(null)
      expect(yield* Effect.promise(() => redis.command("DBSIZE"))).toBe("0")
    })
  )

  it("invalid options are a clear synchronous Error (a defect) that holds no credentials", () => {
    const exit = Effect.runSyncExit(
      Effect.scoped(Effect.asVoid(RedisClient.make({ url: "http://user:hunter2@example.com" })))
    )
    expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true)
    const message = Cause.pretty((exit as Exit.Failure<unknown, unknown>).cause)
    expect(message).toMatch(/url must start with redis:\/\/ or rediss:\/\//)
    expect(message).not.toContain("hunter2")
    // a redis:// URL that does not parse: ioredis' TypeError would carry the whole URL (password included) in `input`
    const unparsable = Effect.runSyncExit(
      Effect.scoped(Effect.asVoid(RedisClient.make({ url: "redis://:hunter2@127.0.0.1:99999" })))
    )
    expect(Exit.isFailure(unparsable) && Cause.isDie(unparsable.cause)).toBe(true)
    const defect = Cause.squash((unparsable as Exit.Failure<unknown, unknown>).cause)
    expect(String(defect)).toMatch(/url does not parse/)
    expect(
      JSON.stringify(Object.entries(defect as object)) +
        Cause.pretty((unparsable as Exit.Failure<unknown, unknown>).cause)
    ).not.toContain("hunter2")
    for (const bad of [{ commandTimeout: 0 }, { connectTimeout: -5 }, { maxReconnectDelay: Duration.infinity }]) {
      const e = Effect.runSyncExit(Effect.scoped(Effect.asVoid(RedisClient.make(bad))))
      expect(Exit.isFailure(e) && Cause.isDie(e.cause), JSON.stringify(bad)).toBe(true)
    }
  })
})

/**
 * Sockets of this process. (Timers are not compared: Effect's scheduler and the harness keep short-lived ones of
 * their own; a reconnect timer that survived would show as a new client connecting, which the tests check.)
 */
const sockets = () => process.getActiveResourcesInfo().filter((r) => r === "TCPSocketWrap" || r === "TCPWRAP").length

/** after the harness' own readiness probe socket is gone, measured from a fresh macrotask */
const settledSockets = Effect.zipRight(
  Effect.sleep("20 millis"),
  Effect.promise(() => new Promise<number>((resolve) => setImmediate(() => resolve(sockets()))))
)

describe("RedisClient releases its connection", () => {
  for (const state of ["up", "paused", "down"] as const) {
    it.scopedLive(`when the scope of a mode Layer closes, Redis ${state}`, () =>
      Effect.gen(function* () {
        const redis = yield* redisServer()
        const before = yield* settledSockets
        const scope = yield* Scope.make()
        const context = yield* Layer.buildWithScope(
          explicitDegraded().pipe(Layer.provideMerge(RedisClient.layer(options(redis.url)))),
          scope
        )
        const client = Context.get(context, RedisClient).client
        expect(client.status).toBe("ready")
        expect(yield* clientCount(redis)).toBe(2) // ioredis and redis-cli itself
        expect(sockets()).toBe(before + 1)
        if (state === "paused") redis.pause()
        if (state === "down") {
          yield* Effect.promise(() => redis.kill())
          yield* Effect.sleep("50 millis") // reconnecting now, with a reconnect timer
        }
        const [, closeMs] = yield* timed(Scope.close(scope, Exit.void))
        // at once, also when a paused Redis would never acknowledge a graceful close
        expect(closeMs).toBeLessThan(100)
        // closed when the scope's close returns, not some time later
        if (state !== "down") expect(client.status).toBe("end")
        expect(sockets()).toBe(before)
        expect(yield* settledSockets).toBe(before)
        if (state === "paused") redis.resume()
        if (state === "down") yield* Effect.promise(() => redis.restart())
        // and it never connects again
        yield* Effect.sleep("300 millis") // longer than the reconnect backoff
        expect(yield* clientCount(redis)).toBe(1)
        expect(yield* settledSockets).toBe(before)
      })
    )
  }

  it.scopedLive("when a mode Layer fails at startup", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const before = yield* settledSockets
      redis.pause()
      const exit = yield* Effect.exit(
        Effect.scoped(Layer.build(strictDistributed().pipe(Layer.provide(RedisClient.layer(options(redis.url))))))
      )
      expect(Exit.isFailure(exit)).toBe(true)
      expect(yield* settledSockets).toBe(before)
      redis.resume()
      yield* Effect.sleep("300 millis") // longer than the reconnect backoff
      yield* eventually(
        Effect.map(clientCount(redis), (n) => n === 1),
        1_000
      )
    })
  )
})

describe("RedisClient.layerConfig", () => {
  it.scopedLive("reads REDIS_URL and the timeouts through Config", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const provider = ConfigProvider.fromMap(
        new Map([
          ["REDIS_URL", redis.url],
          ["REDIS_COMMAND_TIMEOUT", "150 millis"],
          ["REDIS_CONNECT_TIMEOUT", "250 millis"]
        ])
      )
      const context = yield* Layer.build(RedisClient.layerConfig()).pipe(Effect.withConfigProvider(provider))
      const service = Context.get(context, RedisClient)
      expect(Duration.toMillis(service.commandTimeout)).toBe(150)
      expect(service.description).toBe(`127.0.0.1:${redis.port}`)
      yield* service.awaitReady(Duration.seconds(2))
      expect(yield* Effect.promise(() => service.client.ping())).toBe("PONG")
    })
  )
})

const configLayer = (entries: ReadonlyArray<readonly [string, string]>) =>
  Effect.exit(
    Effect.scoped(Layer.build(RedisClient.layerConfig())).pipe(
      Effect.withConfigProvider(ConfigProvider.fromMap(new Map(entries)))
    )
  )

/** the ConfigError of a failed build (a defect would fail this: bad configuration is never one) */
const configErrorOf = (exit: Exit.Exit<unknown, unknown>): string => {
  expect(Exit.isFailure(exit)).toBe(true)
  const cause = (exit as Exit.Failure<unknown, unknown>).cause
  expect(Cause.isDie(cause)).toBe(false)
  const failure = Cause.failureOption(cause)
  expect(Option.isSome(failure)).toBe(true)
  expect((failure as Option.Some<{ _op?: string }>).value._op).toBe("InvalidData")
  return String(Option.getOrThrow(failure))
}

describe("RedisClient.layerConfig with bad settings", () => {
  it.effect("a REDIS_URL without redis:// is a ConfigError naming REDIS_URL, not a defect", () =>
    Effect.gen(function* () {
      const message = configErrorOf(yield* configLayer([["REDIS_URL", "127.0.0.1:6411"]]))
      expect(message).toContain("REDIS_URL")
      expect(message).not.toContain("6411")
    })
  )

  it.effect("a zero or unreadable REDIS_COMMAND_TIMEOUT is a ConfigError naming the variable, not a defect", () =>
    Effect.gen(function* () {
      for (const value of ["0 millis", "-5 seconds", "soon", "Infinity"]) {
        const message = configErrorOf(yield* configLayer([["REDIS_COMMAND_TIMEOUT", value]]))
        expect(message).toContain("REDIS_COMMAND_TIMEOUT")
      }
      expect(configErrorOf(yield* configLayer([["REDIS_CONNECT_TIMEOUT", "0"]]))).toContain("REDIS_CONNECT_TIMEOUT")
    })
  )

  it.scopedLive("REDIS_COMMAND_TIMEOUT=300 is read as 300 milliseconds", () =>
    Effect.gen(function* () {
      const provider = ConfigProvider.fromMap(new Map([["REDIS_COMMAND_TIMEOUT", "300"]]))
      const context = yield* Layer.build(RedisClient.layerConfig()).pipe(Effect.withConfigProvider(provider))
      expect(Duration.toMillis(Context.get(context, RedisClient).commandTimeout)).toBe(300)
    })
  )

  it.effect("bad cluster nodes and an empty sentinel name are ConfigErrors, not defects", () =>
    Effect.gen(function* () {
      const cluster = yield* Effect.exit(
        Effect.scoped(Layer.build(RedisClient.layerClusterConfig())).pipe(
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["REDIS_CLUSTER_NODES", "10.0.0.1:7000,nohost"]])))
        )
      )
      expect(configErrorOf(cluster)).toContain("REDIS_CLUSTER_NODES")
      const sentinel = yield* Effect.exit(
        Effect.scoped(Layer.build(RedisClient.layerSentinelConfig())).pipe(
          Effect.withConfigProvider(
            ConfigProvider.fromMap(
              new Map([
                ["REDIS_SENTINELS", "10.0.0.1:26379"],
                ["REDIS_SENTINEL_NAME", ""]
              ])
            )
          )
        )
      )
      expect(configErrorOf(sentinel)).toContain("sentinel name")
    })
  )
})

// --- nothing printed -------------------------------------------------------------------------------------------------

/** everything written to stderr, stdout or the console while `self` runs */
const printedDuring = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const printed: Array<string> = []
      const saved = {
        stderr: process.stderr.write,
        stdout: process.stdout.write,
        warn: console.warn,
        error: console.error,
        log: console.log
      }
      const capture =
        (into: Array<string>) =>
        (chunk: unknown): boolean => {
          into.push(String(chunk))
          return true
        }
      process.stderr.write = capture(printed) as typeof process.stderr.write
      process.stdout.write = capture(printed) as typeof process.stdout.write
      console.warn = (...args: Array<unknown>) => void printed.push(args.map(String).join(" "))
      console.error = (...args: Array<unknown>) => void printed.push(args.map(String).join(" "))
      console.log = (...args: Array<unknown>) => void printed.push(args.map(String).join(" "))
      return { printed, saved }
    }),
    ({ printed }) => Effect.as(self, printed),
    ({ saved }) =>
      Effect.sync(() => {
        process.stderr.write = saved.stderr
        process.stdout.write = saved.stdout
        console.warn = saved.warn
        console.error = saved.error
        console.log = saved.log
      })
  )

describe("RedisClient prints nothing outside Effect's Logger", () => {
  it.scopedLive("a Sentinel client whose sentinels are down, and a password a passwordless Redis does not need", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const logged: Array<string> = []
      const logger = Logger.make(({ message }) => void logged.push(String(message)))
      const printed = yield* printedDuring(
        Effect.gen(function* () {
          // nothing listens on these ports: every attempt of the client (and of its failover detector) fails
          const down = yield* Effect.promise(() => Promise.all([freePort(), freePort()]))
          const sentinel = yield* RedisClient.makeSentinel({
            sentinels: down.map((port) => `127.0.0.1:${port}`),
            name: "cache",
            connectTimeout: "200 millis",
            maxReconnectDelay: "100 millis"
          })
          yield* Effect.exit(sentinel.awaitReady(Duration.millis(1_500)))
          // the server has no password: ioredis would warn that one was supplied
          const single = yield* RedisClient.make({ url: redis.url, password: "not-needed-secret" })
          yield* Effect.exit(single.awaitReady(Duration.seconds(2)))
          yield* Effect.sleep("300 millis")
        }).pipe(
          Effect.scoped,
          Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
          Logger.withMinimumLogLevel(LogLevel.Debug)
        )
      )
      expect(printed).toEqual([])
      // routed to the Logger instead, without the password
      expect(logged.some((m) => m.includes("does not require a password"))).toBe(true)
      expect(logged.some((m) => m.includes("Redis connection error"))).toBe(true)
      expect(logged.join("\n")).not.toContain("not-needed-secret")
    })
  )

  it.scopedLive("a Sentinel client whose sentinels die while it is connected (its failover detector reconnects)", () =>
    Effect.gen(function* () {
      const setup = yield* redisSentinel()
      const logged: Array<string> = []
      const logger = Logger.make(({ message }) => void logged.push(String(message)))
      const printed = yield* printedDuring(
        Effect.gen(function* () {
          const client = yield* RedisClient.makeSentinel({
            sentinels: setup.sentinelAddresses,
            name: setup.name,
            connectTimeout: "200 millis",
            maxReconnectDelay: "100 millis"
          })
          yield* Effect.orDie(client.awaitReady(Duration.seconds(5)))
          // the failover detector subscribes to every sentinel once the master is reached
          yield* Effect.sleep("500 millis")
          yield* Effect.promise(() => Promise.all(setup.sentinels.map((s) => s.kill())))
          yield* Effect.sleep("1500 millis")
        }).pipe(
          Effect.scoped,
          Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
          Logger.withMinimumLogLevel(LogLevel.Debug)
        )
      )
      expect(printed).toEqual([])
      expect(logged.some((m) => m.includes("Redis connection error"))).toBe(true)
    })
  )
})

// --- secret redaction ------------------------------------------------------------------------------------------------

const PASSWORD = "correct-H0rse/b@ttery#staple"
const WRONG = "Wr0ng-S3cret@pass/word:1"

interface Observed {
  readonly texts: Array<string>
}

/** every rendering of an outcome a caller or an operator could see */
const observe = (observed: Observed, value: unknown) => {
  if (Exit.isExit(value)) {
    if (Exit.isFailure(value)) {
      observed.texts.push(Cause.pretty(value.cause))
      for (const error of Cause.failures(value.cause)) observe(observed, error)
      for (const defect of Cause.defects(value.cause)) observe(observed, defect)
    }
    return
  }
  if (value instanceof Error) {
    observed.texts.push(value.message, String(value), value.stack ?? "", JSON.stringify(value))
    if (value instanceof CacheBackendUnavailable) observed.texts.push(value.reason)
    return
  }
  observed.texts.push(JSON.stringify(value) ?? String(value), String(value))
}

const expectNoSecret = (observed: Observed, ...secrets: Array<string>) => {
  expect(observed.texts.length).toBeGreaterThan(0)
  for (const text of observed.texts) {
    for (const secret of secrets) {
      for (const form of [secret, encodeURIComponent(secret)]) expect(text).not.toContain(form)
    }
  }
}

/** runs `f` with REDIS_URL (and more) in a ConfigProvider and a Logger that records every entry into `observed` */
const withConfig = <A, E, R>(
  env: ReadonlyArray<readonly [string, string]>,
  observed: Observed,
  self: Effect.Effect<A, E, R>
) => {
  const logger = Logger.make(({ message }) => {
    observe(observed, message)
  })
  return self.pipe(
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(env))),
    Effect.provide(Logger.replace(Logger.defaultLogger, logger))
  )
}

const urlWithPassword = (redis: RedisServer, password: string) =>
  `redis://:${encodeURIComponent(password)}@127.0.0.1:${redis.port}`

const fastConfig = [
  ["REDIS_COMMAND_TIMEOUT", `${COMMAND_TIMEOUT_MS} millis`],
  ["REDIS_CONNECT_TIMEOUT", "300 millis"]
] as const

const strictFromConfig = strictDistributed({ cooldown: "300 millis", startupTimeout: "400 millis" }).pipe(
  Layer.provide(RedisClient.layerConfig())
)
const degradedFromConfig = explicitDegraded({ cooldown: "300 millis", startupTimeout: "400 millis" }).pipe(
  Layer.provide(RedisClient.layerConfig())
)

const requirePassword = (redis: RedisServer) =>
  Effect.promise(() => redis.command("CONFIG", "SET", "requirepass", PASSWORD))

/** startup with these settings fails (strict) or degrades (degraded); both outcomes are observed */
const startBoth = (env: ReadonlyArray<readonly [string, string]>, observed: Observed) =>
  withConfig(
    env,
    observed,
    Effect.gen(function* () {
      const strict = yield* Effect.exit(Effect.scoped(Layer.build(strictFromConfig)))
      observe(observed, strict)
      expect(Exit.isFailure(strict)).toBe(true)
      const reason = (
        Option.getOrThrow(
          Cause.failureOption((strict as Exit.Failure<unknown, unknown>).cause)
        ) as CacheBackendUnavailable
      ).reason
      const degraded = yield* Effect.scoped(
        Effect.flatMap(Layer.build(degradedFromConfig), (context) =>
          Effect.all([
            Items.set("k", 1),
            Items.get("k"),
            Effect.exit(Items.invalidate("k")),
            Effect.exit(Items.clear())
          ]).pipe(Effect.provide(context))
        )
      )
      for (const outcome of degraded) observe(observed, outcome)
      expect(Exit.isFailure(degraded[2])).toBe(true)
      return reason
    })
  )

describe("secret redaction", () => {
  it.scopedLive("a wrong password in REDIS_URL appears in no error, error JSON or log entry", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      yield* requirePassword(redis)
      const observed: Observed = { texts: [] }
      const reason = yield* startBoth([["REDIS_URL", urlWithPassword(redis, WRONG)], ...fastConfig], observed)
      // the failure that was observed is the authentication failure
      expect(reason).toMatch(/WRONGPASS/)
      expectNoSecret(observed, WRONG, PASSWORD)
    })
  )

  it.scopedLive("a wrong REDIS_PASSWORD appears in no error, error JSON or log entry", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      yield* requirePassword(redis)
      const observed: Observed = { texts: [] }
      const reason = yield* startBoth([["REDIS_URL", redis.url], ["REDIS_PASSWORD", WRONG], ...fastConfig], observed)
      expect(reason).toMatch(/WRONGPASS/)
      expectNoSecret(observed, WRONG, PASSWORD)
    })
  )

  it.scopedLive("the password of a Redis that is down appears in no error, error JSON or log entry", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      yield* Effect.promise(() => redis.kill())
      const observed: Observed = { texts: [] }
      const reason = yield* startBoth([["REDIS_URL", urlWithPassword(redis, PASSWORD)], ...fastConfig], observed)
      expect(reason).toMatch(/ECONNREFUSED|not connected/)
      expectNoSecret(observed, PASSWORD)
    })
  )

  it.scopedLive("the right password works, and appears in no runtime error or event when Redis goes down", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      yield* requirePassword(redis)
      const observed: Observed = { texts: [] }
      yield* withConfig(
        [["REDIS_URL", urlWithPassword(redis, PASSWORD)], ...fastConfig],
        observed,
        Effect.gen(function* () {
          const strict = yield* Layer.build(strictFromConfig)
          const degraded = yield* Layer.build(degradedFromConfig)
          const on =
            (context: Context.Context<DistributedCache>) =>
            <A, E>(self: Effect.Effect<A, E, DistributedCache>) =>
              Effect.exit(Effect.provide(self, context))
          expect(yield* on(strict)(Items.set("k", 1))).toEqual(Exit.void)
          expect(yield* clientCount(redis, "--no-auth-warning", "-a", PASSWORD)).toBe(3)
          yield* Effect.promise(() => redis.kill())
          for (const context of [strict, degraded]) {
            for (const op of [Items.get("k"), Items.set("k", 2), Items.invalidate("k"), Items.clear()]) {
              observe(observed, yield* on(context)(op as Effect.Effect<unknown, unknown, DistributedCache>))
            }
          }
        })
      )
      // the runtime events were logged, and the strict failures observed
      expect(observed.texts.some((t) => t.includes("BACKEND_UNAVAILABLE_AT_RUNTIME"))).toBe(true)
      expect(observed.texts.some((t) => t.includes("CacheBackendUnavailable"))).toBe(true)
      expectNoSecret(observed, PASSWORD)
    })
  )
})
