/**
 * One process of the load test (`bench/load.ts`): its own RedisClient, StrictDistributed cache and near cache, many
 * fibers of near reads with 1% writes of versioned values, every operation recorded for the checker.
 *
 * Versions: key `k` is written only by process `k % processes`, one write at a time, with versions 1, 2, … (the
 * loader wrote version 0 of every key): the order of a key's versions is the order of its writes in Redis.
 * Times are wall-clock milliseconds (`performance.timeOrigin + performance.now()`), comparable across processes of
 * one machine.
 *
 * Arguments: one JSON `WorkerSettings`. When its near cache is open it prints `ready` and reads one JSON `Schedule`
 * line from stdin (every process starts its load at one moment). Output: a binary file (`out`), see `encodeRecords`.
 */
import { writeFileSync } from "node:fs"
import { performance } from "node:perf_hooks"
import { Duration, Effect, Either, Fiber, Layer, Option, Schema } from "effect"
import { Keyspace, RedisClient, strictDistributed } from "effect-failclosed"

/** what the runner tells a worker when it starts */
export interface WorkerSettings {
  readonly url: string
  readonly id: number
  readonly processes: number
  readonly keys: number
  readonly fibers: number
  readonly writeRatio: number
  readonly maxStalenessMillis: number
  /** reads recorded at most (the fibers stop reading when it is reached) */
  readonly maxReads: number
  readonly out: string
}

/** what the runner tells every worker once all are ready */
export interface Schedule {
  /** when the fibers start and stop (wall-clock ms) */
  readonly startAt: number
  readonly endAt: number
  /** a synchronous stall of this process: [at, ms] (wall clock), or none */
  readonly stall: readonly [number, number] | undefined
}

const readSchedule = (): Promise<Schedule> =>
  new Promise((resolve) => {
    let text = ""
    process.stdin.setEncoding("utf8")
    process.stdin.on("data", (chunk: string) => {
      text += chunk
      const newline = text.indexOf("\n")
      if (newline >= 0) {
        process.stdin.pause()
        resolve(JSON.parse(text.slice(0, newline)) as Schedule)
      }
    })
  })

export const loadKeyspace = (maxStalenessMillis: number, keys: number) =>
  Keyspace.make({
    name: "load",
    key: Schema.Number,
    value: Schema.Struct({ k: Schema.Number, v: Schema.Number }),
    timeToLive: "1 hour",
    nearCache: { capacity: keys * 2, maxStaleness: Duration.millis(maxStalenessMillis) }
  })

/** a read's flags */
export const READ_NEAR = 1
export const READ_FAILED = 2
/** a write's states */
export const WRITE_DONE = 1
export const WRITE_UNKNOWN = 2

/** the records of one worker (columns) */
export interface Records {
  readonly readStart: Float64Array
  readonly readKey: Int32Array
  /** the version read (-1: none) */
  readonly readVersion: Int32Array
  readonly readFlags: Uint8Array
  readonly writeKey: Int32Array
  readonly writeVersion: Int32Array
  readonly writeSent: Float64Array
  readonly writeDone: Float64Array
  readonly writeState: Uint8Array
}

/** [reads, writes, then the columns in the order of `Records`] */
export const encodeRecords = (r: Records, reads: number, writes: number): Buffer => {
  const parts = [
    Buffer.from(new Int32Array([reads, writes]).buffer),
    Buffer.from(r.readStart.buffer, 0, reads * 8),
    Buffer.from(r.readKey.buffer, 0, reads * 4),
    Buffer.from(r.readVersion.buffer, 0, reads * 4),
    Buffer.from(r.readFlags.buffer, 0, reads),
    Buffer.from(r.writeSent.buffer, 0, writes * 8),
    Buffer.from(r.writeDone.buffer, 0, writes * 8),
    Buffer.from(r.writeKey.buffer, 0, writes * 4),
    Buffer.from(r.writeVersion.buffer, 0, writes * 4),
    Buffer.from(r.writeState.buffer, 0, writes)
  ]
  return Buffer.concat(parts)
}

export const decodeRecords = (buffer: Buffer): Records & { readonly reads: number; readonly writes: number } => {
  const bytes = new Uint8Array(buffer.byteLength)
  bytes.set(buffer)
  const head = new Int32Array(bytes.buffer, 0, 2)
  const reads = head[0]!
  const writes = head[1]!
  let at = 8
  const take = <T>(make: (b: ArrayBuffer, at: number, n: number) => T, n: number, size: number): T => {
    // every column is copied out, so that each starts at an aligned offset
    const copy = bytes.slice(at, at + n * size).buffer
    at += n * size
    return make(copy, 0, n)
  }
  const readStart = take((b, o, n) => new Float64Array(b, o, n), reads, 8)
  const readKey = take((b, o, n) => new Int32Array(b, o, n), reads, 4)
  const readVersion = take((b, o, n) => new Int32Array(b, o, n), reads, 4)
  const readFlags = take((b, o, n) => new Uint8Array(b, o, n), reads, 1)
  const writeSent = take((b, o, n) => new Float64Array(b, o, n), writes, 8)
  const writeDone = take((b, o, n) => new Float64Array(b, o, n), writes, 8)
  const writeKey = take((b, o, n) => new Int32Array(b, o, n), writes, 4)
  const writeVersion = take((b, o, n) => new Int32Array(b, o, n), writes, 4)
  const writeState = take((b, o, n) => new Uint8Array(b, o, n), writes, 1)
  return {
    reads,
    writes,
    readStart,
    readKey,
    readVersion,
    readFlags,
    writeKey,
    writeVersion,
    writeSent,
    writeDone,
    writeState
  }
}

const now = (): number => performance.timeOrigin + performance.now()

const main = async (s: WorkerSettings) => {
  let schedule: Schedule = { startAt: Infinity, endAt: -Infinity, stall: undefined }
  const Load = loadKeyspace(s.maxStalenessMillis, s.keys)
  const maxWrites = Math.ceil(s.maxReads * s.writeRatio * 4) + 1_000
  const r: Records = {
    readStart: new Float64Array(s.maxReads),
    readKey: new Int32Array(s.maxReads),
    readVersion: new Int32Array(s.maxReads),
    readFlags: new Uint8Array(s.maxReads),
    writeKey: new Int32Array(maxWrites),
    writeVersion: new Int32Array(maxWrites),
    writeSent: new Float64Array(maxWrites),
    writeDone: new Float64Array(maxWrites),
    writeState: new Uint8Array(maxWrites)
  }
  let reads = 0
  let writes = 0
  const version = new Int32Array(s.keys)
  const writing = new Uint8Array(s.keys)
  const owned = Array.from({ length: s.keys }, (_, k) => k).filter((k) => k % s.processes === s.id)
  // hot keys are read far more often than cold ones (as a near cache's keys are), over every key
  const pick = () => Math.min(s.keys - 1, Math.floor(s.keys * Math.random() ** 2))

  const fiber = Effect.gen(function* () {
    while (now() < schedule.endAt && reads < s.maxReads) {
      if (Math.random() < s.writeRatio && writes < maxWrites) {
        const k = owned[Math.floor(Math.random() ** 2 * owned.length)]!
        if (writing[k] === 1) continue
        writing[k] = 1
        const v = ++version[k]!
        const i = writes++
        r.writeKey[i] = k
        r.writeVersion[i] = v
        r.writeSent[i] = now()
        const result = yield* Effect.either(Load.set(k, { k, v }))
        r.writeDone[i] = now()
        r.writeState[i] = Either.isRight(result) ? WRITE_DONE : WRITE_UNKNOWN
        writing[k] = 0
        continue
      }
      const k = pick()
      const i = reads++
      r.readStart[i] = now()
      r.readKey[i] = k
      const result = yield* Effect.either(Load.get(k))
      if (Either.isLeft(result)) {
        r.readVersion[i] = -1
        r.readFlags[i] = READ_FAILED
      } else if (Option.isNone(result.right)) {
        r.readVersion[i] = -1
      } else {
        const cached = result.right.value
        // a value never written would show here: its key must be the key read
        r.readVersion[i] = cached.value.k === k ? cached.value.v : -2
        r.readFlags[i] = cached.near ? READ_NEAR : 0
      }
    }
  })

  const stall = Effect.gen(function* () {
    if (schedule.stall === undefined) return
    const [at, ms] = schedule.stall
    yield* Effect.sleep(Duration.millis(Math.max(0, at - now())))
    const end = now() + ms
    while (now() < end) {
      // a CPU-bound task: this process reads no socket and runs no timer until it ends
    }
  })

  const program = Effect.gen(function* () {
    // the near cache opens its tracking connection on its first read; reads start together
    while (!Option.isSome(yield* Load.get(0)) || !(yield* Load.get(0)).pipe(Option.exists((c) => c.near))) {
      yield* Effect.sleep("5 millis")
    }
    process.stdout.write("ready\n")
    schedule = yield* Effect.promise(readSchedule)
    yield* Effect.sleep(Duration.millis(Math.max(0, schedule.startAt - now())))
    const stalling = yield* Effect.fork(stall)
    yield* Effect.all(
      Array.from({ length: s.fibers }, () => fiber),
      { concurrency: "unbounded", discard: true }
    )
    yield* Fiber.join(stalling)
  })

  const layer = strictDistributed({ cooldown: "100 millis" }).pipe(
    Layer.provide(RedisClient.layer({ url: s.url, commandTimeout: Duration.millis(1_000) }))
  )
  await Effect.runPromise(Effect.provide(program, layer))
  writeFileSync(s.out, encodeRecords(r, reads, writes))
}

if (process.argv[2] !== undefined) {
  main(JSON.parse(process.argv[2]) as WorkerSettings).then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`load worker: ${String(error)}\n`)
      process.exit(1)
    }
  )
}
