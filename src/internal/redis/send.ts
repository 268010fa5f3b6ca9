/**
 * How the Redis store sends a command: plain commands (GET, SET, UNLINK, EVALSHA, …), each bounded by one deadline,
 * and, on a single node or a Sentinel-managed master, the commands of one tick written to the socket together.
 *
 * One deadline per call: the store's ({@link Deadlines}: one timer for all calls, judged after the replies already
 * received are read, so a stall of this process is not taken for an unavailable Redis). ioredis would arm a timer of
 * its own per command (its `commandTimeout`, which the client keeps for commands sent on `client` directly): the
 * store's commands are {@link StoreCommand}s, for which it arms none.
 *
 * Writing together: the socket is corked at the first command of a tick and uncorked after the microtasks of that
 * tick (`process.nextTick`), when every fiber resumed by the same replies has sent its next command. The commands then
 * leave in one write and Redis reads them in one pass: this is what ioredis' auto-pipelining buys (measured: Redis CPU
 * per GET at 256 in flight equal to raw auto-pipelined GETs, see docs/architecture.md), without its `Pipeline` object
 * per tick and without its wait for `setImmediate`, so a lone call is written in the same tick it is made.
 */
import { type Cluster, Command, type Redis } from "ioredis"
import { isCluster } from "./cluster.js"
import { Deadlines } from "./deadlines.js"

/** A command of the store: its deadline is the store's, so ioredis arms no timer of its own for it. */
class StoreCommand extends Command {
  override setTimeout(): void {}
}

/** what a command that missed its deadline settles with */
export const TIMED_OUT: unique symbol = Symbol("timed out")

/**
 * How a call to Redis ends: `error` is a driver or reply error, or {@link TIMED_OUT} (undefined on success).
 * @internal
 */
export type Done = (error: unknown, reply: unknown) => void

/** @internal */
export interface Sender {
  /** one command, its reply as a UTF-8 string (or an array of them) */
  readonly command: (name: string, args: ReadonlyArray<string | number>) => Promise<unknown>
  /** runs `send` (one or more commands) and settles `done` once: with its outcome, or TIMED_OUT at the deadline */
  readonly bound: (send: () => Promise<unknown>, done: Done) => void
}

/** @internal */
export const makeSender = (client: Redis | Cluster, commandTimeoutMillis: number): Sender => {
  const deadlines = new Deadlines(commandTimeoutMillis)
  let corked: { uncork(): void } | undefined
  /** commands written in the corked write under way, and in the last one */
  let batched = 0
  let lastBatch = 0
  const uncork = () => {
    const stream = corked
    corked = undefined
    lastBatch = batched
    batched = 0
    stream?.uncork()
  }
  const write = (command: Command): Promise<unknown> => {
    // Sequential calls (the last write carried one command, none is in flight) are written at once, without the cork,
    // the nextTick and the uncork. Measured (Keyspace.get hit, sequential, 13 interleaved A/B runs of 40k calls on the
    // shared 2-core machine, load 4-10): median 0.69x -> 0.81x raw ioredis default in ops/s, faster in 12 of 13 runs.
    // Calls made while others are in flight, or after a write that carried several, are corked as below (256 in
    // flight: still 210-235 commands per write).
    if (corked === undefined && !isCluster(client) && (lastBatch > 1 || client.commandQueue.length > 0)) {
      const stream = client.stream
      if (stream !== undefined && stream !== null && stream.writable) {
        stream.cork()
        corked = stream
        process.nextTick(uncork)
      }
    }
    if (corked !== undefined) batched++
    return client.sendCommand(command) as Promise<unknown>
  }
  return {
    command: (name, args) => write(new StoreCommand(name, args as Array<string | number>, { replyEncoding: "utf8" })),
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
