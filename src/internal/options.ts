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
    /** `input` (or `fallback` when it is undefined) as milliseconds by `rule` (see {@link durationMillis}) */
    duration: (option: string, input: unknown, rule: DurationRule, fallback?: Duration.DurationInput): number => {
      const millis = durationMillis(option, input ?? fallback, rule)
      return typeof millis === "string" ? invalid(millis) : millis
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
 * How a duration option is read: `timeToLive` (whole milliseconds for Redis `PX`, at least 1; an infinite duration is
 * Infinity, no expiry), `window` (whole milliseconds, finite, at least 1), `timeout` (milliseconds, finite, positive).
 * @internal
 */
export type DurationRule = "timeToLive" | "window" | "timeout"

/**
 * The one check of every duration option and setting: its milliseconds by `rule`, or why it is invalid (a message
 * that names `option` and never the value).
 * @internal
 */
export const durationMillis = (option: string, input: unknown, rule: DurationRule): number | string => {
  const decoded = Duration.decodeUnknown(input)
  if (Option.isNone(decoded)) {
    return rule === "timeToLive"
      ? `${option} is not a duration`
      : rule === "window"
        ? `${option} must be a finite duration`
        : `${option} must be a positive, finite duration`
  }
  const d = decoded.value
  if (!Duration.isFinite(d)) {
    return rule === "timeToLive"
      ? Infinity
      : rule === "window"
        ? `${option} must be a finite duration`
        : `${option} must be a positive, finite duration`
  }
  const millis = Duration.toMillis(d)
  switch (rule) {
    case "timeout":
      return millis > 0 ? millis : `${option} must be a positive, finite duration`
    case "timeToLive":
      return millis > 0 ? Math.max(1, Math.ceil(millis)) : `${option} must be positive`
    case "window": {
      if (!(millis >= 1)) return `${option} must be at least 1 millisecond`
      const rounded = Math.ceil(millis)
      return Number.isSafeInteger(rounded) ? rounded : `${option} is too long`
    }
  }
}

/**
 * A time to live as whole milliseconds for Redis `PX` (at least 1), undefined for no expiry
 * (an infinite duration), or the reason it is invalid.
 * @internal
 */
export const ttlMillisOf = (input: Duration.DurationInput): number | undefined | string => {
  const millis = durationMillis("timeToLive", input, "timeToLive")
  return millis === Infinity ? undefined : millis
}
