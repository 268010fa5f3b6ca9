/**
 * One node of the cross-process stampede tests (test/stampedes.test.ts), run as its own Node process:
 * `node --import tsx --conditions=source test/support/stampedeNode.ts '<json Args>'`. It builds a StrictDistributed
 * cache on the given Redis, prints `ready` and waits for a line on stdin (so that every node starts its burst together), runs
 * `fibers` concurrent getOrCompute calls of one cold key whose `compute` counts its runs in Redis (INCR) and then
 * sleeps `computeMillis`, and prints one JSON line: what each call returned and how long the burst took.
 */
import { Duration, Effect, Either, Layer, Schema } from "effect"
import { Keyspace, RedisClient, strictDistributed } from "effect-failclosed"
import { Redis } from "ioredis"

export interface Args {
  readonly url: string
  readonly fibers: number
  readonly computeMillis: number
  readonly lock: boolean
  readonly lockTimeoutMillis: number
  /** the Redis key `compute` increments */
  readonly counter: string
}

export interface Report {
  readonly values: ReadonlyArray<number | string>
  readonly elapsedMillis: number
}

const Values = Keyspace.make({ name: "stampede", key: Schema.String, value: Schema.Number, timeToLive: "1 minute" })

const args = JSON.parse(process.argv[2]!) as Args
const raw = new Redis(args.url, { lazyConnect: false, maxRetriesPerRequest: 1 })

const compute = Effect.promise(() => raw.incr(args.counter)).pipe(
  Effect.tap(() => Effect.sleep(Duration.millis(args.computeMillis)))
)

const program = Effect.gen(function* () {
  // connected and warm before the burst
  yield* Values.get("warm-up")
  process.stdout.write("ready\n")
  yield* Effect.async<void>((resume) => {
    process.stdin.once("data", () => resume(Effect.void))
  })
  const start = performance.now()
  const results = yield* Effect.forEach(
    Array.from({ length: args.fibers }),
    () =>
      Effect.either(
        Values.getOrCompute("cold", compute, { lock: args.lock, lockTimeout: Duration.millis(args.lockTimeoutMillis) })
      ),
    { concurrency: "unbounded" }
  )
  const report: Report = {
    values: results.map((r) => (Either.isRight(r) ? r.right.value : `error ${(r.left as { _tag?: string })._tag}`)),
    elapsedMillis: performance.now() - start
  }
  process.stdout.write(JSON.stringify(report) + "\n")
}).pipe(
  Effect.provide(
    strictDistributed().pipe(Layer.provide(RedisClient.layer({ url: args.url, commandTimeout: Duration.seconds(3) })))
  )
)

Effect.runPromise(program).then(
  () => raw.quit().then(() => process.exit(0)),
  (error) => {
    process.stderr.write(String(error) + "\n")
    process.exit(1)
  }
)
