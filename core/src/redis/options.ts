/**
 * The ioredis options that make a client fail fast, as plain data: no offline queue (a command to a Redis that is not
 * connected fails at once instead of waiting for it), no re-send after a reconnect, no retry of a failed command, a
 * connect deadline, a capped reconnect backoff, a bounded disconnect. ioredis' defaults queue commands offline and
 * retry forever: on a dead, paused or black-holed Redis an operation would hang. The wrappers read their settings
 * (Effect `Config` and options) and pass milliseconds here.
 */
import type { RedisOptions } from "ioredis"

/**
 * How much later than the command timeout ioredis' own per-command timer fails a command sent on the client directly.
 * The store's commands do not have this timer: each has one deadline, the store's (`Deadlines`, judged after the
 * replies already received are read, so a stall of this process is not taken for an unavailable Redis), and its
 * commands tell ioredis not to arm a timer of its own (see `send.ts`).
 * @internal
 */
export const DIRECT_COMMAND_GRACE_MILLIS = 2_000

/**
 * A reconnect backoff: 25 ms doubling per attempt, capped at `capMillis`.
 * @internal
 */
export const cappedBackoff =
  (capMillis: number) =>
  (times: number): number =>
    Math.min(25 * 2 ** Math.min(times, 10), capMillis)

/**
 * The fail-fast options of every client (single node, Cluster, Sentinel).
 * @internal
 */
export const failFastOptions = (o: {
  readonly commandTimeoutMillis: number
  readonly connectTimeoutMillis: number
  readonly maxReconnectDelayMillis: number
  readonly enableAutoPipelining: boolean
}): RedisOptions => ({
  enableOfflineQueue: false,
  autoResendUnfulfilledCommands: false,
  maxRetriesPerRequest: 0,
  commandTimeout: o.commandTimeoutMillis + DIRECT_COMMAND_GRACE_MILLIS,
  connectTimeout: o.connectTimeoutMillis,
  retryStrategy: cappedBackoff(o.maxReconnectDelayMillis),
  // closing waits this long at most for Redis to acknowledge, then destroys the socket (a paused Redis never does)
  disconnectTimeout: Math.min(o.connectTimeoutMillis, 500),
  // a failed ready check must not wait forever either
  enableReadyCheck: true,
  enableAutoPipelining: o.enableAutoPipelining,
  lazyConnect: false
})
