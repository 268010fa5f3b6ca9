/**
 * The seeded run settings of the core's property tests (the same variables as the Effect package's:
 * `FC_SEED` reproduces a run, `FC_RUNS` raises the number of runs).
 */
import * as fc from "fast-check"
import { beforeAll } from "vitest"

export const seeded = (file: string) => {
  const seed = Number(process.env["FC_SEED"] ?? 20_261_125)
  const numRuns = Math.max(1_000, Number(process.env["FC_RUNS"] ?? 1_000))
  beforeAll(() => {
    console.info(`[property] core/${file}: seed ${seed}, ${numRuns} runs per property (reproduce with FC_SEED=${seed})`)
  })
  return { seed, numRuns }
}

/** glob metacharacters, the layout's separators and marks, escapes, controls, line separators, bidi, combining, astral */
const hostileChar = fc.oneof(
  fc.constantFrom(
    "*",
    "?",
    "[",
    "]",
    "\\",
    "^",
    ":",
    "-",
    "_",
    ".",
    "{",
    "}",
    "~",
    "k",
    "t",
    "a",
    "A",
    "0",
    "=",
    "/",
    "%",
    " ",
    "\n",
    "\r",
    "\0",
    "\u001b",
    "\u007f",
    "\u0085",
    "\u2028",
    "\u202e",
    "\ufeff",
    "é",
    "e\u0301",
    "\ud83d\ude00"
  ),
  // lone surrogates: malformed UTF-16 that UTF-8 would collapse to U+FFFD
  fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)),
  fc.string({ unit: "binary", minLength: 1, maxLength: 1 })
)

/**
 * Non-empty, at most `maxLength` UTF-16 code units (a unit may be two; the cut may leave a lone surrogate): ids made
 * of the written-as-is alphabet, hostile ids, and long ones.
 */
export const hostileString = (maxLength: number): fc.Arbitrary<string> =>
  fc
    .oneof(
      { weight: 3, arbitrary: fc.stringMatching(/^[A-Za-z0-9._-]{1,8}$/) },
      { weight: 6, arbitrary: fc.string({ unit: hostileChar, minLength: 1, maxLength: Math.min(8, maxLength) }) },
      { weight: 2, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: Math.min(40, maxLength) }) },
      {
        weight: 1,
        arbitrary: fc.string({ unit: hostileChar, minLength: Math.max(1, maxLength - 16), maxLength })
      }
    )
    .map((s) => s.slice(0, maxLength))

/** text that breaks or forges a log line: line ends, separators, bidi and ANSI controls, quotes, lone surrogates */
export const hostileText = fc.string({
  unit: fc.oneof(
    fc.constantFrom("\n", "\r", "\u0085", "\u2028", "\u2029", "\u202e", "\u2066", "\u001b[31m", "\u007f", '"', "\\"),
    fc.string({ unit: "binary", minLength: 1, maxLength: 1 }),
    fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c))
  ),
  maxLength: 80
})
