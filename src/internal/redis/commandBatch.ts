/**
 * Command coalescing for a single Redis (or a Sentinel-managed master): the calls made in one
 * turn of the event loop (GET, SET, UNLINK, replay claims, rate-limit decisions) leave as one
 * command. With many fibers in flight, ioredis' own cost per command (a Command object, its
 * promise, its encoding and the parse of its reply) is most of the client's CPU; one command for
 * a whole tick's calls divides it.
 *
 * - A lone call is sent as itself (`GET`, `SET … PX`, `UNLINK`, `SET … NX`, the decision's own
 *   `EVALSHA`): a sequential caller sees the plain command.
 * - Several calls go out as one `EVALSHA` of {@link BATCH_LUA} (`EVAL` when the server answers
 *   `NOSCRIPT`), which runs them in the order they were made, each on its own (`redis.pcall`,
 *   or Lua's `pcall` around a decision): every call gets its own reply or its own error
 *   (`WRONGTYPE`, `OOM`, …), as it would alone, and the order of the calls, which concurrent
 *   callers could observe, is kept. A decision runs the same Lua as alone, atomically.
 * - One deadline covers the whole batch: every call of it was made in the same tick.
 *
 * Not for a Redis Cluster: keys of different slots cannot share a command.
 */
import { createHash } from "node:crypto"
import { Command, type Redis } from "ioredis"
import type { RateLimitAlgorithm, RateLimitRequest } from "../../DistributedCache.js"
import { isNoScript, rateLimitScripts, toDecision } from "./rateLimit.js"

/**
 * How a call to Redis ends: `error` is a driver or reply error (undefined on success), `reply` Redis' reply.
 * @internal
 */
export type Done = (error: unknown, reply: unknown) => void

/** the operation of a call, one character of the batch's operations string */
const GET = "g"
const UNLINK = "d"
const SET = "s"
const SET_PX = "p"
const CLAIM = "n"
const LIMITS: Readonly<Record<RateLimitAlgorithm, string>> = {
  "fixed-window": "f",
  "sliding-window": "w",
  "token-bucket": "t"
}

/** a rate-limit script as a Lua function of its own KEYS and ARGV */
const limiter = (algorithm: RateLimitAlgorithm) =>
  `[${LIMITS[algorithm].charCodeAt(0)}] = function(KEYS, ARGV)\n${rateLimitScripts[algorithm].lua}\nend`

/**
 * The batch script. `ARGV[1]` holds one character per call, its operation: `g` GET, `d` UNLINK,
 * `s` SET, `p` SET … PX, `n` a claim (SET … 1 PX … NX), `f`/`w`/`t` a fixed-window, sliding-window
 * or token-bucket decision. Each call takes its keys from KEYS in order (two for `w`, else one)
 * and its arguments from ARGV in order: the value of `s`; the value and milliseconds of `p`; the
 * milliseconds of `n`; limit, window and cost of a decision. (One operations string rather than
 * an argument per call: each argument costs the client an encoding and the server a parse.)
 * @internal
 */
export const BATCH_LUA = `
local limiters = {
${limiter("fixed-window")},
${limiter("sliding-window")},
${limiter("token-bucket")}
}
local ops = ARGV[1]
local out = {}
local k = 1
local a = 2
for i = 1, #ops do
  local c = string.byte(ops, i)
  if c == 103 then
    out[i] = redis.pcall('GET', KEYS[k])
    k = k + 1
  elseif c == 112 then
    out[i] = redis.pcall('SET', KEYS[k], ARGV[a], 'PX', ARGV[a + 1])
    k = k + 1
    a = a + 2
  elseif c == 115 then
    out[i] = redis.pcall('SET', KEYS[k], ARGV[a])
    k = k + 1
    a = a + 1
  elseif c == 110 then
    out[i] = redis.pcall('SET', KEYS[k], '1', 'PX', ARGV[a], 'NX')
    k = k + 1
    a = a + 1
  elseif c == 100 then
    out[i] = redis.pcall('UNLINK', KEYS[k])
    k = k + 1
  else
    local keys
    if c == 119 then
      keys = {KEYS[k], KEYS[k + 1]}
      k = k + 2
    else
      keys = {KEYS[k]}
      k = k + 1
    end
    local ok, r = pcall(limiters[c], keys, {ARGV[a], ARGV[a + 1], ARGV[a + 2]})
    a = a + 3
    if ok then
      out[i] = r
    elseif type(r) == 'table' and r.err ~= nil then
      out[i] = r
    else
      out[i] = {err = 'ERR ' .. tostring(r)}
    end
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
  /** see {@link BATCH_LUA} */
  readonly op: string
  readonly key: string
  /** the value of a SET */
  readonly value: string | undefined
  /** the milliseconds of a SET … PX or a claim */
  readonly ttlMillis: number | undefined
  /** a decision's request */
  readonly request: RateLimitRequest | undefined
  readonly done: Done
}

/** @internal */
export interface CommandBatch {
  readonly get: (key: string, done: Done) => void
  readonly set: (key: string, value: string, ttlMillis: number | undefined, done: Done) => void
  readonly invalidate: (key: string, done: Done) => void
  /** `SET key 1 PX ttlMillis NX`: replies "OK" when claimed, null when taken */
  readonly claim: (key: string, ttlMillis: number, done: Done) => void
  /** replies a RateLimitDecision */
  readonly rateLimit: (request: RateLimitRequest, done: Done) => void
}

/**
 * A batcher over `client`. `bound(send, settle)` sends one command and settles once, with its
 * reply, its error or a timeout (the caller's command timeout, from the moment of the call).
 * @internal
 */
export const makeCommandBatch = (
  client: Redis,
  bound: (send: () => Promise<unknown>, settle: Done) => void
): CommandBatch => {
  /** one command written to the connection now, outside ioredis' auto-pipelining (which would wait a turn) */
  const direct = (name: string, args: Array<string | number>): Promise<unknown> =>
    client.sendCommand(new Command(name, args, { replyEncoding: "utf8" })) as Promise<unknown>

  /** a decision's own EVALSHA; EVAL when the server answers NOSCRIPT */
  const decide = (request: RateLimitRequest): Promise<unknown> => {
    const s = rateLimitScripts[request.algorithm]
    const args: Array<string | number> =
      request.algorithm === "sliding-window"
        ? [s.sha, 2, request.key + ":l", request.key + ":m", request.limit, request.windowMillis, request.cost]
        : [s.sha, 1, request.key, request.limit, request.windowMillis, request.cost]
    return direct("evalsha", args).then(toDecision, (error: unknown) => {
      if (!isNoScript(error)) throw error
      args[0] = s.lua
      return direct("eval", args).then(toDecision)
    })
  }

  /**
   * A lone call, sent as the command it stands for, at once: with nothing else to send in this turn, waiting for
   * ioredis' auto-pipelining would only add a turn of the event loop.
   */
  const single = (call: Call): Promise<unknown> => {
    switch (call.op) {
      case GET:
        return direct("get", [call.key])
      case UNLINK:
        return direct("unlink", [call.key])
      case SET_PX:
        return direct("set", [call.key, call.value!, "PX", call.ttlMillis!])
      case SET:
        return direct("set", [call.key, call.value!])
      case CLAIM:
        return direct("set", [call.key, "1", "PX", call.ttlMillis!, "NX"])
      default:
        return decide(call.request!)
    }
  }

  /**
   * One EVALSHA written to the connection now, outside ioredis' auto-pipelining (which would hold it until the end of
   * the tick); EVAL when the server answers NOSCRIPT.
   */
  const script = (calls: ReadonlyArray<Call>): Promise<unknown> => {
    const keys: Array<string> = []
    let ops = ""
    for (const call of calls) {
      ops += call.op
      if (call.request !== undefined) {
        if (call.op === LIMITS["sliding-window"]) keys.push(call.key + ":l", call.key + ":m")
        else keys.push(call.key)
      } else keys.push(call.key)
    }
    const args: Array<string | number> = [BATCH_SHA, keys.length]
    for (const key of keys) args.push(key)
    args.push(ops)
    for (const call of calls) {
      if (call.value !== undefined) args.push(call.value)
      if (call.ttlMillis !== undefined) args.push(call.ttlMillis)
      if (call.request !== undefined) args.push(call.request.limit, call.request.windowMillis, call.request.cost)
    }
    return direct("evalsha", args).catch((error: unknown) => {
      if (!isNoScript(error)) throw error
      // the server lost its script cache (restart, SCRIPT FLUSH, failover): EVAL caches it again
      args[0] = BATCH_LUA
      return direct("eval", args)
    })
  }

  /** a call's own reply, as it would have come alone */
  const settleCall = (call: Call, reply: unknown): void => {
    if (reply instanceof Error) return call.done(reply, undefined)
    if (call.request === undefined) return call.done(undefined, reply)
    let decision
    try {
      decision = toDecision(reply)
    } catch (error) {
      return call.done(error, undefined)
    }
    call.done(undefined, decision)
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
        for (let i = 0; i < calls.length; i++) settleCall(calls[i]!, reply[i])
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

  const call = (
    op: string,
    key: string,
    value: string | undefined,
    ttlMillis: number | undefined,
    request: RateLimitRequest | undefined,
    done: Done
  ): Call => ({ op, key, value, ttlMillis, request, done })

  return {
    get: (key, done) => enqueue(call(GET, key, undefined, undefined, undefined, done)),
    set: (key, value, ttlMillis, done) =>
      enqueue(call(ttlMillis === undefined ? SET : SET_PX, key, value, ttlMillis, undefined, done)),
    invalidate: (key, done) => enqueue(call(UNLINK, key, undefined, undefined, undefined, done)),
    claim: (key, ttlMillis, done) => enqueue(call(CLAIM, key, undefined, ttlMillis, undefined, done)),
    rateLimit: (request, done) =>
      enqueue(call(LIMITS[request.algorithm], request.key, undefined, undefined, request, done))
  }
}
