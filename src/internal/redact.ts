/**
 * Secret scrubbing for error reasons: whatever a driver puts in an error message, the
 * password (and a URL that carries it) is replaced before the text leaves this library.
 */

/** @internal */
export const makeSecretScrubber = (secrets: ReadonlyArray<string | undefined>) => {
  const list = secrets.filter((s): s is string => s !== undefined && s.length > 0).sort((a, b) => b.length - a.length)
  return (error: unknown): string => {
    let text: string
    if (error instanceof Error) {
      text = error.message
      if (/timed out/i.test(text)) return "timeout"
    } else {
      text = String(error)
    }
    for (const secret of list) text = text.split(secret).join("<redacted>")
    // any credentials embedded in a URL the driver echoed back
    text = text.replace(/(rediss?:\/\/[^:/@\s]*:)[^@\s]*@/g, "$1<redacted>@")
    text = text.replace(/[\r\n\u0000-\u001f]+/g, " ")
    return text.length > 200 ? text.slice(0, 197) + "..." : text
  }
}
