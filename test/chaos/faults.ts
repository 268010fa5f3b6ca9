/**
 * Fault scripts run against a real redis-server (test/support/RedisServer.ts) while the load
 * driver keeps N fibers busy. Each script reports its timeline in `performance.now()` millis:
 * when the fault began, when Redis was back for good, how many times it went down, and the
 * moments the process was killed (a killed redis-server comes back empty: the harness keeps no
 * data across a restart).
 */
import { performance } from "node:perf_hooks"
import type { RedisServer } from "../support/RedisServer.js"

export interface FaultTimeline {
  /** the first fault action (kill, SIGSTOP, first DEBUG SLEEP) was about to be taken */
  readonly startedAt: number
  /** Redis is back and stays back: restart resolved, SIGCONT sent, last DEBUG SLEEP returned */
  readonly backAt: number
  /** how many separate times Redis became unavailable */
  readonly downs: number
  /** the moments each killed process was gone (the data set is lost: the harness keeps no data across a restart) */
  readonly killedAt: ReadonlyArray<number>
}

export interface FaultHooks {
  /** called as soon as a killed redis-server has exited, before it is started again */
  readonly killed: (at: number) => void
  /**
   * Redis stopped answering (a killed process has exited, SIGSTOP was sent): recorded after the fact, so Redis was
   * down at least from `at`
   */
  readonly down?: (at: number) => void
  /** Redis is about to answer again (before the restart begins, before SIGCONT): it was down at least until `at` */
  readonly up?: (at: number) => void
}

export interface Fault {
  readonly name: string
  /** one line for tables and docs */
  readonly description: string
  readonly run: (server: RedisServer, hooks: FaultHooks) => Promise<FaultTimeline>
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
const now = (): number => performance.now()

const kill = async (server: RedisServer, hooks: FaultHooks, killedAt: Array<number>): Promise<void> => {
  await server.kill()
  const at = now()
  killedAt.push(at)
  hooks.killed(at)
  hooks.down?.(at)
}

const restart = async (server: RedisServer, hooks: FaultHooks): Promise<void> => {
  hooks.up?.(now())
  await server.restart()
}

/** SIGKILL, stay down for `downMillis`, start again on the same port (empty: no persistence). */
export const killRestart = (downMillis: number): Fault => ({
  name: "kill-restart",
  description: `SIGKILL, down ${downMillis} ms, restart on the same port`,
  run: async (server, hooks) => {
    const startedAt = now()
    const killedAt: Array<number> = []
    await kill(server, hooks, killedAt)
    await sleep(downMillis)
    await restart(server, hooks)
    return { startedAt, backAt: now(), downs: 1, killedAt }
  }
})

/** SIGSTOP (a black hole: connections stay open, nothing answers), then SIGCONT. */
export const pauseResume = (pausedMillis: number): Fault => ({
  name: "pause-resume",
  description: `SIGSTOP for ${pausedMillis} ms, then SIGCONT`,
  run: async (server, hooks) => {
    const startedAt = now()
    server.pause()
    hooks.down?.(now())
    await sleep(pausedMillis)
    hooks.up?.(now())
    server.resume()
    return { startedAt, backAt: now(), downs: 1, killedAt: [] }
  }
})

/** An immediate restart: a short gap, and Redis comes back with an empty data set. */
export const restartEmpty: Fault = {
  name: "restart-empty",
  description: "kill and start at once; Redis comes back empty",
  run: async (server, hooks) => {
    const startedAt = now()
    const killedAt: Array<number> = []
    await kill(server, hooks, killedAt)
    await restart(server, hooks)
    return { startedAt, backAt: now(), downs: 1, killedAt }
  }
}

/** Down and up several times a second: `cycles` times SIGKILL, down, restart, up. */
export const flapping = (cycles: number, downMillis: number, upMillis: number): Fault => ({
  name: "flapping",
  description: `${cycles} times: SIGKILL, down ${downMillis} ms, restart, up ${upMillis} ms`,
  run: async (server, hooks) => {
    const startedAt = now()
    const killedAt: Array<number> = []
    let backAt = startedAt
    for (let i = 0; i < cycles; i++) {
      await kill(server, hooks, killedAt)
      await sleep(downMillis)
      await restart(server, hooks)
      backAt = now()
      if (i < cycles - 1) await sleep(upMillis)
    }
    return { startedAt, backAt, downs: cycles, killedAt }
  }
})

/**
 * A slow Redis: `DEBUG SLEEP <sleepSeconds>` back to back for about `durationMillis`. Commands
 * that arrive during a sleep wait for its end, so with a sleep a little longer than the command
 * timeout some answer just in time and some time out.
 */
export const slow = (durationMillis: number, sleepSeconds: number): Fault => ({
  name: "slow",
  description: `DEBUG SLEEP ${sleepSeconds} back to back for ${durationMillis} ms`,
  run: async (server) => {
    const startedAt = now()
    let downs = 0
    while (now() - startedAt < durationMillis) {
      downs++
      await server.commandWithTimeout(10_000, "DEBUG", "SLEEP", String(sleepSeconds))
    }
    return { startedAt, backAt: now(), downs, killedAt: [] }
  }
})

/** The sleep of the slow fault: a quarter longer than the command timeout, so some calls time out and some do not. */
const sleepNear = (commandTimeoutMillis: number): number => Math.round(commandTimeoutMillis * 1.25) / 1000

/** The short script of every fault, for CI. */
export const ciFaults = (commandTimeoutMillis: number): ReadonlyArray<Fault> => [
  killRestart(800),
  pauseResume(800),
  restartEmpty,
  flapping(4, 150, 200),
  slow(1_000, sleepNear(commandTimeoutMillis))
]

/** The long script of every fault, for `npm run chaos`. */
export const longFaults = (commandTimeoutMillis: number): ReadonlyArray<Fault> => [
  killRestart(5_000),
  pauseResume(5_000),
  restartEmpty,
  flapping(15, 150, 200),
  slow(5_000, sleepNear(commandTimeoutMillis))
]
