/**
 * Secret scrubbing for error reasons: whatever a driver puts in an error message, the
 * password (and a URL that carries it) is replaced before the text leaves this library.
 */

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

/** @internal */
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
