/**
 * How the Redis store sends a command: plain commands (GET, SET, UNLINK, EVALSHA, …), each bounded by one deadline,
 * and, on a single node or a Sentinel-managed master, the commands of one tick written to the socket together.
 *
 * One deadline per call: the store's ({@link Deadlines}: one timer for all calls, judged after the replies already
 * received are read, so a stall of this process is not taken for an unavailable Redis). ioredis would arm a timer of
 * its own per command (its `commandTimeout`, which the client keeps for commands sent on `client` directly): the
 * store's commands are {@link StoreCommand}s, for which it arms none.
 *
 * Writing together: the commands of a tick are held (see {@link Batch}) until the microtasks of that tick have run
 * (`process.nextTick`), when every fiber resumed by the same replies has sent its next command. The commands then
 * leave in one write and Redis reads them in one pass: this is what ioredis' auto-pipelining buys (measured with
 * bench/profile-get.ts: Redis reads per GET at 256 in flight equal to raw auto-pipelined GETs of the same keys, and
 * Redis CPU per GET 1.0-1.1x theirs), without its wait for `setImmediate`, so a lone call is written in the same tick
 * it is made.
 */
import { type Cluster, Command, type Redis } from "ioredis"
import { isCluster } from "./cluster.js"
import { Deadlines } from "./deadlines.js"

/** A command of the store: its deadline is the store's, so ioredis arms no timer of its own for it. */
class StoreCommand extends Command {
  override setTimeout(): void {}
}

/** the options of every store command (ioredis reads them, never writes them: one object for all) */
const UTF8 = { replyEncoding: "utf8" } as const

/** what a command that missed its deadline settles with */
export const TIMED_OUT: unique symbol = Symbol("timed out")

/**
 * How a call to Redis ends: `error` is a driver or reply error, or {@link TIMED_OUT} (undefined on success).
 * @internal
 */
export type SendDone = (error: unknown, reply: unknown) => void

/** @internal */
export interface Sender {
  /** one command, its reply as a UTF-8 string (or an array of them) */
  readonly command: (name: string, args: ReadonlyArray<string | number>) => Promise<unknown>
  /** runs `send` (one or more commands) and settles `done` once: with its outcome, or TIMED_OUT at the deadline */
  readonly bound: (send: () => Promise<unknown>, done: SendDone) => void
}

/**
 * The commands of one tick, written to the socket as one string.
 *
 * Commands of a tick are queued here, not given to ioredis, until the tick's microtasks have run; then each is given
 * to `sendCommand` with {@link Collector} as its stream (as ioredis' own `Pipeline` does), which appends it to one
 * string written once. Everything from the first `sendCommand` to the write is synchronous, so no command sent on the
 * client directly can come between: ioredis' reply queue keeps the order of the socket.
 *
 * Measured (bench/profile-get.ts, the store's GET hit with 256 in flight, 5 alternating runs of the old and this
 * sender on the shared 2-core machine, load 3-8): client CPU per GET median 13.3 -> 10.8 µs, 80k -> 97k ops/s; in a
 * CPU profile the write path fell from 16.8 % to 6.0 % of the samples. A corked socket kept a buffered chunk and a
 * callback per command and wrote them with `writev`; this writes one string. Redis gets the same bytes in as many reads.
 */
class Batch {
  private queued: Array<Command> = []
  private data = ""
  private collecting = false
  /** the stream `sendCommand` writes a command to */
  private readonly collector: Collector

  constructor(private readonly client: Redis) {
    this.collector = {
      isPipeline: true,
      destination: { redis: client },
      write: (writable) => {
        // a string while the tick's commands are sent; anything else (a command ioredis sends again later from its
        // offline queue, after a reconnection) goes to the socket of the moment
        if (this.collecting && typeof writable === "string") this.data += writable
        else {
          this.flushData()
          client.stream.write(writable)
        }
      }
    }
  }

  /** commands waiting for the end of this tick */
  get size(): number {
    return this.queued.length
  }

  /** commands of the last batch written */
  last = 0

  add(command: Command): Promise<unknown> {
    if (this.queued.length === 0) process.nextTick(this.send)
    this.queued.push(command)
    return command.promise
  }

  private readonly send = (): void => {
    const commands = this.queued
    this.queued = []
    this.last = commands.length
    this.collecting = true
    try {
      for (let i = 0; i < commands.length; i++) void this.client.sendCommand(commands[i]!, this.collector as never)
    } finally {
      this.collecting = false
      this.flushData()
    }
  }

  private flushData(): void {
    if (this.data === "") return
    const data = this.data
    this.data = ""
    this.client.stream.write(data)
  }
}

/** what ioredis' `sendCommand` accepts as a stream: it writes each command's RESP text to it */
interface Collector {
  readonly isPipeline: true
  readonly destination: { readonly redis: Redis }
  readonly write: (writable: string | Buffer) => void
}

/** @internal */
export const makeSender = (client: Redis | Cluster, commandTimeoutMillis: number): Sender => {
  const deadlines = new Deadlines(commandTimeoutMillis)
  const batch = isCluster(client) ? undefined : new Batch(client)
  const write = (command: Command): Promise<unknown> => {
    // Sequential calls (the last batch carried one command, none is in flight) are written at once, without the
    // batch and its nextTick. Measured (Keyspace.get hit, sequential, 13 interleaved A/B runs of 40k calls on the
    // shared 2-core machine, load 4-10): median 0.69x -> 0.81x raw ioredis default in ops/s, faster in 12 of 13 runs.
    // Calls made while others are in flight, or after a batch of several, join the tick's batch. 256 GETs in flight
    // (bench/profile-get.ts, COUNT_WRITES=1): 0.0065-0.0070 socket writes per GET, 140-155 commands a write; Redis
    // reads them in 16 KiB reads, 0.008 per GET, as it reads raw ioredis' auto-pipelined GETs of the same 79-byte keys.
    // Holding the batch longer was tried (to `setImmediate`, as ioredis' auto-pipelining does, and while earlier
    // replies were outstanding): Redis still read 0.008 per GET and its CPU per GET was no lower, so a lone call's
    // latency is not spent on it.
    if (batch === undefined) return client.sendCommand(command) as Promise<unknown>
    if (batch.size === 0 && batch.last <= 1 && (client as Redis).commandQueue.length === 0) {
      return client.sendCommand(command) as Promise<unknown>
    }
    return batch.add(command)
  }
  return {
    command: (name, args) => write(new StoreCommand(name, args as Array<string | number>, UTF8)),
    bound: (send, done) => {
      const pending = deadlines.add(() => done(TIMED_OUT, undefined))
      const finish = (error: unknown, reply: unknown) => {
        if (pending.settled) return
        pending.settled = true
        done(error, reply)
      }
      try {
        send().then(
          (reply) => finish(undefined, reply),
          (error: unknown) => finish(error ?? new Error("rejected"), undefined)
        )
      } catch (error) {
        finish(error ?? new Error("rejected"), undefined)
      }
    }
  }
}
