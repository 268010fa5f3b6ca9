/**
 * Command coalescing for a single Redis (or a Sentinel-managed master): the GET, SET and UNLINK
 * calls made in one turn of the event loop leave as one command. With many fibers in flight,
 * ioredis' own cost per command (a Command object, its promise, its encoding and the parse of
 * its reply) is most of the client's CPU; one command for a whole tick's calls divides it.
 *
 * - A lone call is sent as itself (`GET`, `SET … PX`, `UNLINK`): a sequential caller sees the
 *   plain command.
 * - Several calls go out as one `EVALSHA` of {@link BATCH_LUA} (`EVAL` when the server answers
 *   `NOSCRIPT`), which runs them in the order they were made, each with `redis.pcall`: every
 *   call gets its own reply or its own error (`WRONGTYPE`, `OOM`, …), as it would alone, and
 *   the order of the calls, which concurrent callers could observe, is kept.
 * - One deadline covers the whole batch: every call of it was made in the same tick.
 *
 * Not for a Redis Cluster: keys of different slots cannot share a command.
 */
import { createHash } from "node:crypto"
import { Command, type Redis } from "ioredis"
import type { Done } from "./store.js"

/**
 * The batch script. `ARGV[1]` holds one character per key, its operation: `g` GET, `d` UNLINK,
 * `s` SET, `p` SET … PX. The arguments that follow are, in order, the value of each SET and the
 * value and milliseconds of each SET … PX. (One operations string instead of one argument per
 * key: each argument costs the client an encoding and the server a parse.)
 * @internal
 */
export const BATCH_LUA = `
local ops = ARGV[1]
local out = {}
local a = 1
for i = 1, #KEYS do
  local c = string.byte(ops, i)
  if c == 103 then
    out[i] = redis.pcall('GET', KEYS[i])
  elseif c == 112 then
    out[i] = redis.pcall('SET', KEYS[i], ARGV[a + 1], 'PX', ARGV[a + 2])
    a = a + 2
  elseif c == 115 then
    out[i] = redis.pcall('SET', KEYS[i], ARGV[a + 1])
    a = a + 1
  else
    out[i] = redis.pcall('UNLINK', KEYS[i])
  end
end
return out
`

/** @internal */
export const BATCH_SHA = createHash("sha1").update(BATCH_LUA).digest("hex")

/**
 * Calls per command. A full batch is sent at once, without waiting for the end of the tick: Redis
 * runs it while this process goes on with the fibers that the same replies resumed.
 */
const MAX_CALLS = 64
/** value characters per command: a batch of large values would otherwise become one huge command */
const MAX_VALUE_CHARS = 256 * 1024

interface Call {
  /** `g`, `d`, `s` or `p` (see {@link BATCH_LUA}) */
  readonly op: string
  readonly key: string
  readonly value: string | undefined
  /** of `p` */
  readonly ttlMillis: number | undefined
  readonly done: Done
}

const isNoScript = (error: unknown): boolean => error instanceof Error && error.message.startsWith("NOSCRIPT")

/** @internal */
export interface CommandBatch {
  readonly get: (key: string, done: Done) => void
  readonly set: (key: string, value: string, ttlMillis: number | undefined, done: Done) => void
  readonly unlink: (key: string, done: Done) => void
}

/**
 * A batcher over `client`. `bound(send, onTimeout)` sends one command and must call `onTimeout`
 * (once, instead of any reply) when the command timeout elapses first.
 * @internal
 */
export const makeCommandBatch = (
  client: Redis,
  bound: (send: () => Promise<unknown>, settle: (error: unknown, reply: unknown) => void) => void
): CommandBatch => {
  const single = (call: Call): Promise<unknown> => {
    switch (call.op) {
      case "g":
        return client.get(call.key)
      case "d":
        return client.unlink(call.key)
      case "p":
        return client.set(call.key, call.value!, "PX", call.ttlMillis!)
      default:
        return client.set(call.key, call.value!)
    }
  }

  /**
   * One EVALSHA written to the connection now, outside ioredis' auto-pipelining (which would hold it until the end of
   * the tick); EVAL when the server answers NOSCRIPT.
   */
  const script = (calls: ReadonlyArray<Call>): Promise<unknown> => {
    const args: Array<string | number> = [BATCH_SHA, calls.length]
    let ops = ""
    for (const call of calls) {
      args.push(call.key)
      ops += call.op
    }
    args.push(ops)
    for (const call of calls) {
      if (call.value !== undefined) args.push(call.value)
      if (call.ttlMillis !== undefined) args.push(call.ttlMillis)
    }
    const evalsha = client.sendCommand(new Command("evalsha", args, { replyEncoding: "utf8" })) as Promise<unknown>
    return evalsha.catch((error: unknown) => {
      if (!isNoScript(error)) throw error
      // the server lost its script cache (restart, SCRIPT FLUSH, failover): EVAL caches it again
      args[0] = BATCH_LUA
      return client.sendCommand(new Command("eval", args, { replyEncoding: "utf8" }))
    })
  }

  const send = (calls: Array<Call>) => {
    if (calls.length === 1) {
      const call = calls[0]!
      bound(() => single(call), call.done)
      return
    }
    bound(
      () => script(calls),
      (error, reply) => {
        if (error !== undefined) {
          for (const call of calls) call.done(error, undefined)
          return
        }
        if (!Array.isArray(reply) || reply.length !== calls.length) {
          const unexpected = new Error("unexpected reply to a batch of commands")
          for (const call of calls) call.done(unexpected, undefined)
          return
        }
        for (let i = 0; i < calls.length; i++) {
          const r: unknown = reply[i]
          if (r instanceof Error) calls[i]!.done(r, undefined)
          else calls[i]!.done(undefined, r)
        }
      }
    )
  }

  /** the calls of this tick not sent yet, and the characters of their values */
  let queue: Array<Call> = []
  let queuedChars = 0
  let scheduled = false

  const sendQueue = () => {
    const calls = queue
    queue = []
    queuedChars = 0
    if (calls.length > 0) send(calls)
  }

  const flush = () => {
    scheduled = false
    sendQueue()
  }

  const enqueue = (call: Call) => {
    const chars = call.value?.length ?? 0
    if (queue.length > 0 && queuedChars + chars > MAX_VALUE_CHARS) sendQueue()
    queue.push(call)
    queuedChars += chars
    if (queue.length >= MAX_CALLS) sendQueue()
    else if (!scheduled) {
      scheduled = true
      // after the microtasks of this turn: every fiber resumed by the same replies has made its call by then
      process.nextTick(flush)
    }
  }

  return {
    get: (key, done) => enqueue({ op: "g", key, value: undefined, ttlMillis: undefined, done }),
    set: (key, value, ttlMillis, done) =>
      enqueue({ op: ttlMillis === undefined ? "s" : "p", key, value, ttlMillis, done }),
    unlink: (key, done) => enqueue({ op: "d", key, value: undefined, ttlMillis: undefined, done })
  }
}
