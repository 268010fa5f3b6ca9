/**
 * A Redis connection as both Effect lines open it (with the fail-fast options of `redis/options.ts`): a secret-free
 * description of its errors, a wait for the first connection and a close that leaves no socket or timer behind. Plain
 * callbacks: each Effect line turns them into its own Effects (`Effect.async` on 3, `Effect.callback` on 4) and
 * routes what a client would print to its own Logger.
 */
import type { Cluster, Redis } from "ioredis"

// --- secrets -----------------------------------------------------------------------------------------------------------

/**
 * C0 and C1 control characters (newlines included), DEL, the Unicode line and paragraph separators, and the bidi
 * controls that can reorder what a terminal shows: none of them may reach a log line from a driver's error text.
 */
const UNSAFE_IN_A_LINE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]+/g

/**
 * Replaces every run of characters that could break or reorder a log line with one space.
 * @internal
 */
export const oneLine = (text: string): string => text.replace(UNSAFE_IN_A_LINE, " ")

/**
 * Secret scrubbing for error reasons: whatever a driver puts in an error message, the password (and a URL that
 * carries it) is replaced before the text leaves the library.
 * @internal
 */
export const makeSecretScrubber = (secrets: ReadonlyArray<string | undefined>) => {
  const given = secrets.filter((s): s is string => s !== undefined && s.length > 0)
  // a driver may echo a secret in its URL-encoded form too
  const list = [...new Set([...given, ...given.map(encodeURIComponent)])].sort((a, b) => b.length - a.length)
  return (error: unknown): string => {
    let text: string
    try {
      text = error instanceof Error ? String(error.message) : String(error)
    } catch {
      return "an error that cannot be described"
    }
    if (error instanceof Error && /timed out/i.test(text)) return "timeout"
    for (const secret of list) text = text.split(secret).join("<redacted>")
    // any credentials embedded in a URL the driver echoed back
    text = text.replace(/(rediss?:\/\/[^:/@\s]*:)[^@\s]*@/g, "$1<redacted>@")
    text = oneLine(text)
    return text.length > 200 ? text.slice(0, 197) + "..." : text
  }
}

/**
 * Why `url` cannot be a Redis URL (`redis://` or `rediss://`, and one that parses), or undefined when it can. The
 * reason never holds the URL: it may carry a password. (ioredis parses the URL when a client is made, and a malformed
 * one throws a `TypeError` whose `input` is the whole URL: checked here first, that error is never thrown.)
 * @internal
 */
export const redisUrlProblem = (url: string): string | undefined => {
  if (!/^rediss?:\/\//.test(url)) return "must start with redis:// or rediss://"
  return URL.canParse(url) ? undefined : "does not parse as a URL"
}

/** `host:port` of a Redis URL, without credentials @internal */
export const describeUrl = (url: string): string => {
  try {
    const parsed = new URL(url)
    return `${parsed.hostname}:${parsed.port || "6379"}`
  } catch {
    return "(unparseable url)"
  }
}

/** the password a Redis URL carries, if any (so that the scrubber knows it) @internal */
export const urlPassword = (url: string): string | undefined => {
  try {
    const p = new URL(url).password
    return p === "" ? undefined : decodeURIComponent(p)
  } catch {
    return undefined
  }
}

// --- ready, close ------------------------------------------------------------------------------------------------------

/** waiting cannot fix a wrong password, a missing ACL permission or an untrusted certificate */
const PERMANENT_STARTUP_ERROR =
  /WRONGPASS|NOAUTH|NOPERM|certificate|self[- ]signed|unable to verify|CERT_|ERR_TLS|wrong version number/i

/**
 * Calls `done()` once `client` is connected, or `done(reason)` after `timeoutMillis` (`formatted` is how the timeout
 * reads in the reason) or at the first permanent error. Returns what cancels the wait.
 * @internal
 */
export const awaitReady = (
  client: Redis | Cluster,
  describeError: (e: unknown) => string,
  timeoutMillis: number,
  formatted: string,
  done: (failure: string | undefined) => void
): (() => void) => {
  if (client.status === "ready") {
    done(undefined)
    return () => {}
  }
  let lastError = "not connected"
  const onReady = () => {
    cleanup()
    done(undefined)
  }
  const onError = (e: unknown) => {
    lastError = describeError(e)
    if (PERMANENT_STARTUP_ERROR.test(lastError)) {
      cleanup()
      done(lastError)
    }
  }
  const timer = setTimeout(() => {
    cleanup()
    done(`no connection within ${formatted} (${lastError})`)
  }, timeoutMillis)
  const cleanup = () => {
    clearTimeout(timer)
    client.off("ready", onReady)
    client.off("error", onError)
  }
  client.on("ready", onReady)
  client.on("error", onError)
  return cleanup
}

/** waits for `end`, at most 2 seconds (a safety net: ioredis emits it once the sockets are closed) */
const awaitEnd = (client: Redis | Cluster, done: () => void) => {
  const finish = () => {
    clearTimeout(timer)
    client.off("end", finish)
    done()
  }
  const timer = setTimeout(finish, 2_000)
  client.once("end", finish)
}

/**
 * Disconnects without reconnecting and closes the socket at once (commands still in flight fail; a paused Redis would
 * never acknowledge a graceful close), then calls `done` once ioredis reports the end, so that no socket or timer
 * outlives the caller's scope.
 * @internal
 */
export const closeClient = (client: Redis, done: () => void): void => {
  client.disconnect(false)
  // "reconnecting": no socket, and disconnect cleared the reconnect timer; "wait" turns into "end" at once
  if (client.status === "end" || client.status === "reconnecting" || client.status === "close") return done()
  awaitEnd(client, done)
  client.stream?.destroy()
}

/**
 * Closes a cluster client and calls `done` once every node connection is closed. A cluster that is between two
 * attempts to reach its nodes has no connection left: then there is nothing to wait for.
 * @internal
 */
export const closeCluster = (client: Cluster, done: () => void): void => {
  const before = client.status
  const hadNodes = client.nodes("all").length > 0
  client.disconnect(false)
  if (before === "end" || before === "close" || before === "wait" || !hadNodes) return done()
  awaitEnd(client, done)
}
