/**
 * The entry envelope: what a stored entry looks like, for every writer and reader (Keyspace, getOrCompute's stale
 * windows, KeyValueStore, Persistence), and the checks a value passes before anything is written.
 *
 * - A **plain** entry is the value's JSON, as it is.
 * - A **sealed** entry (written by a getOrCompute with a stale window) is `~1:<writtenAt>:<freshUntil>:<json>`
 *   (epoch milliseconds of the writer's clock), kept in the store for its time to live plus the longest stale window.
 *   `~` cannot start JSON, so a reader tells the two kinds apart by one character and plain entries are read as they
 *   are. A reader that did not ask for stale values treats a sealed entry past `freshUntil` as a miss.
 * - A value is written only when JSON carries it faithfully (`faithfulJson`) and its UTF-8 is within the size limit
 *   (`exceedsBytes`, the one size check).
 *
 * Decoding the JSON into a value (a Schema) is the wrapper's: this module only splits and checks texts.
 */
import { unfaithfulReason } from "./json.js"

const MARK = 126 // "~"
const HEAD = "~1:"

/**
 * True when a stored entry is sealed in an envelope (see the module's comment).
 * @internal
 */
export const isSealed = (raw: string): boolean => raw.charCodeAt(0) === MARK

/**
 * A sealed entry, opened.
 * @internal
 */
export interface Envelope {
  /** when the writer wrote it (epoch milliseconds of its clock) */
  readonly writtenAt: number
  /** when its time to live ends: after it, the value is stale */
  readonly freshUntil: number
  /** the value's JSON */
  readonly json: string
}

/**
 * The envelope of a sealed entry, or undefined when it is not one (a corrupt entry).
 * @internal
 */
export const unseal = (raw: string): Envelope | undefined => {
  if (!raw.startsWith(HEAD)) return undefined
  const a = raw.indexOf(":", HEAD.length)
  const b = a < 0 ? -1 : raw.indexOf(":", a + 1)
  if (b < 0) return undefined
  const writtenAt = Number(raw.slice(HEAD.length, a))
  const freshUntil = Number(raw.slice(a + 1, b))
  if (!Number.isSafeInteger(writtenAt) || !Number.isSafeInteger(freshUntil)) return undefined
  return { writtenAt, freshUntil, json: raw.slice(b + 1) }
}

/**
 * Seals a value's JSON, written at `writtenAt`, fresh for `ttlMillis`.
 * @internal
 */
export const seal = (json: string, writtenAt: number, ttlMillis: number): string =>
  `${HEAD}${writtenAt}:${writtenAt + ttlMillis}:${json}`

/**
 * The one size check: true when the UTF-8 of `text` is larger than `maxBytes`. A UTF-16 code unit is 1 to 3 bytes of
 * UTF-8 (a surrogate pair, two units, is 4), so the length decides most texts without counting bytes.
 * @internal
 */
export const exceedsBytes = (text: string, maxBytes: number): boolean =>
  text.length > maxBytes || (text.length * 3 > maxBytes && Buffer.byteLength(text, "utf8") > maxBytes)

/**
 * A text that cannot be an entry, with why (a failure is data, never a throw): a value refused before anything was
 * written, or a stored entry that does not decode. The reason never holds the value.
 * @internal
 */
export class Invalid {
  readonly _tag = "Invalid"
  constructor(readonly reason: string) {}
}

/**
 * The JSON of an encoded value, when JSON carries it faithfully and it is within `maxBytes`; otherwise why not.
 * `JSON.parse` of the result gives back an equal value.
 * @internal
 */
export const faithfulJson = (encoded: unknown, maxBytes: number): string | Invalid => {
  if (encoded === undefined) return new Invalid("undefined is not representable in JSON")
  const unfaithful = unfaithfulReason(encoded)
  if (unfaithful !== undefined) return new Invalid(unfaithful)
  const json = JSON.stringify(encoded)
  return exceedsBytes(json, maxBytes) ? new Invalid(`encoded value is larger than ${maxBytes} bytes`) : json
}
