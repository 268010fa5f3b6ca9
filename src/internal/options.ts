/**
 * The options of a feature (Keyspace, RateLimiter, ReplayGuard, KeyValueStore), checked when it is
 * made: an invalid option is a programmer error, a synchronous `Error` that names the feature and
 * the option, thrown before anything touches Redis.
 */
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"

/** the longest feature name, in UTF-16 code units */
const MAX_NAME_LENGTH = 128

/**
 * The checks of one feature's options; every message starts `effect-failclosed: <feature> `.
 * @internal
 */
export const optionChecks = (feature: string) => {
  const invalid = (message: string): never => {
    throw new Error(`effect-failclosed: ${feature} ${message}`)
  }
  return {
    invalid,
    /** a name of 1 to 128 characters */
    name: (name: unknown): string => {
      if (typeof name !== "string" || name.length === 0 || name.length > MAX_NAME_LENGTH) {
        invalid(`name must be a string of 1 to ${MAX_NAME_LENGTH} characters`)
      }
      return name as string
    },
    /** `value`, or `fallback` when it is undefined, as a positive safe integer */
    positiveInteger: (option: string, value: number | undefined, fallback: number): number => {
      const v = value ?? fallback
      if (!Number.isSafeInteger(v) || v <= 0) invalid(`${option} must be a positive integer`)
      return v
    }
  }
}

/**
 * A time to live as whole milliseconds for Redis `PX` (at least 1), undefined for no expiry
 * (an infinite duration), or the reason it is invalid.
 * @internal
 */
export const ttlMillisOf = (input: Duration.DurationInput): number | undefined | string => {
  const decoded = Duration.decodeUnknown(input)
  if (Option.isNone(decoded)) return "timeToLive is not a duration"
  const d = decoded.value
  if (!Duration.isFinite(d)) return undefined
  const millis = Duration.toMillis(d)
  if (!(millis > 0)) return "timeToLive must be positive"
  return Math.max(1, Math.ceil(millis))
}
