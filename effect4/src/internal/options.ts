/**
 * The checks of constructor options (`Keyspace.make`, `RateLimiter.make`, a mode's options …): a programmer error is
 * a synchronous `Error` with the same words as the Effect 3 line, before anything touches Redis. Durations are read
 * with Effect 4's `Duration` (the reason this is written in each line).
 */
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"

const MAX_NAME_LENGTH = 128

/** @internal */
export type DurationRule = "timeToLive" | "window" | "timeout"

/** @internal */
export const optionChecks = (feature: string) => {
  const invalid = (message: string): never => {
    throw new Error(`effect-failclosed: ${feature} ${message}`)
  }
  return {
    invalid,
    name: (name: unknown): string => {
      if (typeof name !== "string" || name.length === 0 || name.length > MAX_NAME_LENGTH) {
        invalid(`name must be a string of 1 to ${MAX_NAME_LENGTH} characters`)
      }
      return name as string
    },
    duration: (option: string, input: unknown, rule: DurationRule, fallback?: Duration.Input): number => {
      const millis = durationMillis(option, input ?? fallback, rule)
      return typeof millis === "string" ? invalid(millis) : millis
    },
    positiveInteger: (option: string, value: number | undefined, fallback: number): number => {
      const v = value ?? fallback
      if (!Number.isSafeInteger(v) || v <= 0) invalid(`${option} must be a positive integer`)
      return v
    }
  }
}

const decode = (input: unknown): Option.Option<Duration.Duration> =>
  input === undefined || input === null ? Option.none() : Duration.fromInput(input as Duration.Input)

/**
 * Milliseconds of a duration option, or why it is not acceptable. `timeToLive`: infinite means no expiry (Infinity);
 * `window`: at least 1 ms, finite; `timeout`: positive and finite.
 * @internal
 */
export const durationMillis = (option: string, input: unknown, rule: DurationRule): number | string => {
  const decoded = decode(input)
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
 * A time to live in milliseconds: undefined for an infinite one, a message when invalid.
 * @internal
 */
export const ttlMillisOf = (input: Duration.Input): number | undefined | string => {
  const millis = durationMillis("timeToLive", input, "timeToLive")
  return millis === Infinity ? undefined : millis
}
