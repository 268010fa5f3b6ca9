/**
 * `effect-failclosed inspect <key>`: what the library stored under one Redis key, decoded, without changing it. Only
 * read-only commands are sent (`TYPE`, `PTTL`, `GET`, `HGETALL`, `ZRANGE`), and nothing it prints or throws holds the
 * password or the URL.
 */
import { Redis } from "ioredis"
import { makeSecretScrubber, urlPassword } from "@effect-failclosed/core"
import { describeKey, isSealed, isTagged, type KeyKind, readTagged, unseal } from "./layout.js"

/** where Redis is, as `RedisClient.layerConfig()` reads it (the password and username may also come apart) */
export interface Connection {
  readonly url: string
  readonly username?: string | undefined
  readonly password?: string | undefined
  /** per command and for the connection, in milliseconds */
  readonly timeoutMillis: number
}

/** what is stored under one key, decoded */
export interface Inspection {
  readonly key: string
  readonly kind:
    | "missing"
    | "plain entry"
    | "sealed entry"
    | "corrupt entry"
    | "getOrCompute lock"
    | "rate-limit state"
    | "replay claim"
    | "store entry"
    | "tag stamp"
    | "not the library's"
  /** what the key's shape says: feature, name, tenant */
  readonly of?: KeyKind | undefined
  /** the remaining time to live in milliseconds; null: none */
  readonly ttlMillis?: number | null | undefined
  readonly [field: string]: unknown
}

/** an error whose text is safe to print: secrets removed */
export class InspectFailed extends Error {}

const iso = (millis: number) => (Number.isFinite(millis) ? new Date(millis).toISOString() : String(millis))
const ttlOf = (pttl: number): number | null => (pttl < 0 ? null : pttl)

const parseJson = (raw: string): { readonly ok: true; readonly value: unknown } | { readonly ok: false } => {
  try {
    return { ok: true, value: JSON.parse(raw) }
  } catch {
    return { ok: false }
  }
}

/** a string value: an entry (plain, sealed or tagged), a lock, a claim, a tag stamp, or a store's entry */
const stringValue = (
  key: string,
  of: KeyKind | undefined,
  raw: string,
  ttlMillis: number | null,
  now: number
): Inspection => {
  const base = { key, of, ttlMillis }
  if (of?.feature === "replayGuard") return { ...base, kind: "replay claim", claimed: true } as const
  if (of?.feature === "keyspace" && of.lock) return { ...base, kind: "getOrCompute lock", held: true } as const
  if (of?.feature === "keyValueStore" || of?.feature === "persistence") {
    const json = parseJson(raw)
    return { ...base, kind: "store entry", value: json.ok ? json.value : raw } as const
  }
  // the random token of the tag's stamp: entries written with this tag carry it while it is there
  if (of?.feature === "tagStamp") return { ...base, kind: "tag stamp", token: raw } as const
  if (isTagged(raw)) {
    // a Keyspace entry written with tags: the stamps' tokens it carries, then the entry as it would be stored untagged
    const tagged = readTagged(raw)
    if (tagged === undefined)
      return { ...base, kind: "corrupt entry", reason: "a tagged entry whose head does not parse" } as const
    const entry = stringValue(key, of, tagged.entry, ttlMillis, now)
    return { ...entry, tags: tagged.marks.map((mark) => ({ tagHash: mark.hash, token: mark.token })) }
  }
  if (isSealed(raw)) {
    const envelope = unseal(raw)
    const json = envelope === undefined ? undefined : parseJson(envelope.json)
    if (envelope === undefined || json === undefined || !json.ok) {
      return { ...base, kind: "corrupt entry", reason: "a sealed entry whose envelope or JSON does not parse" } as const
    }
    return {
      ...base,
      kind: "sealed entry",
      writtenAt: iso(envelope.writtenAt),
      freshUntil: iso(envelope.freshUntil),
      fresh: now < envelope.freshUntil,
      value: json.value
    } as const
  }
  const json = parseJson(raw)
  if (!json.ok) return { ...base, kind: "corrupt entry", reason: "not JSON" } as const
  return { ...base, kind: of === undefined ? "not the library's" : "plain entry", value: json.value } as const
}

/** a rate limiter's hash: fixed window {w, c}, token bucket {t, d}, or a sliding window's meta {t, q, n} */
const limiterHash = (of: KeyKind | undefined, fields: Record<string, string>) => {
  const n = (name: string) => (fields[name] === undefined ? undefined : Number(fields[name]))
  if (of?.feature === "rateLimiter" && of.algorithm === "sliding-window") {
    return { costInWindow: n("t"), decisions: n("q"), lastDecisionAt: iso((n("n") ?? NaN) / 1000) }
  }
  if ("w" in fields) return { windowStart: iso(n("w")!), used: n("c") }
  // the debt in units where a token costs `window` and a millisecond repays `limit` (see the scripts)
  return { lastDecisionAt: iso(n("t")!), debt: n("d") }
}

/** a sliding window's log: members `<sequence>:<cost>` scored by the decision's time in microseconds */
const limiterLog = (entries: ReadonlyArray<string>) => {
  const decisions: Array<{ at: string; cost: number }> = []
  for (let i = 0; i + 1 < entries.length; i += 2) {
    decisions.push({ at: iso(Number(entries[i + 1]) / 1000), cost: Number(entries[i]!.split(":")[1]) })
  }
  return decisions
}

/** reads one key with read-only commands */
const readKey = async (client: Redis, key: string, of: KeyKind | undefined, now: number): Promise<Inspection> => {
  const [type, pttl] = await Promise.all([client.type(key), client.pttl(key)])
  const ttlMillis = ttlOf(pttl)
  switch (type) {
    case "none":
      return { key, of, kind: "missing" }
    case "string":
      return stringValue(key, of, (await client.get(key)) ?? "", ttlMillis, now)
    case "hash":
      return { key, of, ttlMillis, kind: "rate-limit state", state: limiterHash(of, await client.hgetall(key)) }
    case "zset":
      return {
        key,
        of,
        ttlMillis,
        kind: "rate-limit state",
        log: limiterLog(await client.zrange(key, 0, -1, "WITHSCORES"))
      }
    default:
      return { key, of, ttlMillis, kind: "not the library's", type }
  }
}

/** decodes what is stored under `key` (for a sliding window's decision key: its log and its meta hash) */
export const inspect = async (key: string, connection: Connection): Promise<Inspection> => {
  const scrub = makeSecretScrubber([connection.password, urlPassword(connection.url), connection.url])
  let client: Redis
  try {
    // ioredis parses the URL here: a malformed one throws a TypeError whose `input` is the whole URL, password included
    client = new Redis(connection.url, {
      username: connection.username,
      password: connection.password,
      lazyConnect: true,
      connectTimeout: connection.timeoutMillis,
      commandTimeout: connection.timeoutMillis,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      // ioredis' ready check sends INFO: read-only, kept
      enableReadyCheck: true
    })
  } catch (error) {
    throw new InspectFailed(`the Redis URL does not parse: ${scrub(error)}`)
  }
  // connection errors are reported by the rejected command below, scrubbed
  client.on("error", () => {})
  try {
    await client.connect()
    const of = describeKey(key)
    const now = Date.now()
    if (of?.feature === "rateLimiter" && of.algorithm === "sliding-window" && of.part === undefined) {
      const [log, meta] = await Promise.all([
        readKey(client, key + ":l", { ...of, part: "log" }, now),
        readKey(client, key + ":m", { ...of, part: "meta" }, now)
      ])
      if (log.kind === "missing" && meta.kind === "missing") return { key, of, kind: "missing" }
      return { key, of, kind: "rate-limit state", ttlMillis: meta.ttlMillis, state: meta["state"], log: log["log"] }
    }
    return await readKey(client, key, of, now)
  } catch (error) {
    throw new InspectFailed(`Redis did not answer: ${scrub(error)}`)
  } finally {
    client.disconnect()
  }
}
