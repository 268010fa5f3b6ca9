/**
 * The commands of `npx effect-failclosed` (the bin is `main.ts`): find and read what the library keeps in Redis.
 *
 *   effect-failclosed key --keyspace profiles --tenant acme --key '{"userId":12345}'
 *   effect-failclosed pattern --tenant acme (--keyspace profiles | --rate-limiter login | --replay-guard webhooks)
 *   effect-failclosed inspect '<key>' [--url redis://…]      (or REDIS_URL, REDIS_USERNAME, REDIS_PASSWORD)
 *
 * Exit codes: 0 done, 1 the key holds nothing, 2 a usage error, 3 Redis did not answer.
 */
import { parseArgs } from "node:util"
import { redisUrlProblem } from "@effect-failclosed/core"
import { inspect } from "./inspect.js"
import { keyspaceEntryKey, type ScanTarget, scanPattern } from "./layout.js"

export const HELP = `effect-failclosed: find and read what effect-failclosed keeps in Redis

  effect-failclosed key --keyspace <name> [--tenant <id>] --key <json> [--key-prefix <prefix>]
      the Redis key of one Keyspace entry (the key as its key Schema encodes it, as JSON)

  effect-failclosed pattern (--keyspace <name> | --rate-limiter <name> [--algorithm <a>] | --replay-guard <name>
                            | --key-value-store <name>) [--tenant <id> | --no-tenant] [--key-prefix <prefix>]
      the glob of SCAN … MATCH / redis-cli --scan --pattern for a feature, or one tenant of it

  effect-failclosed inspect <key> [--url <redis url>] [--timeout <millis>]
      decodes what is stored under <key> (an entry, a sealed entry, a lock, rate-limit state, a replay claim)
      with read-only commands; Redis from --url, else REDIS_URL (REDIS_USERNAME, REDIS_PASSWORD)

--key-prefix is the mode's keyPrefix (default fc). Exit codes: 0 done, 1 nothing under the key, 2 usage, 3 Redis down.
`

/** a usage error: printed with the help, exit code 2 */
export class Usage extends Error {}

const OPTIONS = {
  keyspace: { type: "string" },
  "rate-limiter": { type: "string" },
  "replay-guard": { type: "string" },
  "key-value-store": { type: "string" },
  algorithm: { type: "string" },
  tenant: { type: "string" },
  "no-tenant": { type: "boolean" },
  key: { type: "string" },
  "key-prefix": { type: "string" },
  url: { type: "string" },
  timeout: { type: "string" },
  help: { type: "boolean", short: "h" }
} as const

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>["values"]

const required = (value: string | undefined, flag: string): string => {
  if (value === undefined || value === "") throw new Usage(`${flag} is required`)
  return value
}

const tenantOf = (values: Values): string | null | undefined => {
  if (values["no-tenant"] === true) {
    if (values.tenant !== undefined) throw new Usage("give --tenant or --no-tenant, not both")
    return null
  }
  return values.tenant
}

const targetOf = (values: Values): ScanTarget => {
  const keyPrefix = values["key-prefix"]
  const tenant = tenantOf(values)
  const given = (["keyspace", "rate-limiter", "replay-guard", "key-value-store"] as const).filter(
    (flag) => values[flag] !== undefined
  )
  if (given.length !== 1) {
    throw new Usage("give exactly one of --keyspace, --rate-limiter, --replay-guard, --key-value-store")
  }
  switch (given[0]!) {
    case "keyspace":
      return { keyspace: values.keyspace!, tenant, keyPrefix }
    case "rate-limiter": {
      const algorithm = values.algorithm
      if (algorithm !== undefined && !["fixed-window", "sliding-window", "token-bucket"].includes(algorithm)) {
        throw new Usage("--algorithm must be fixed-window, sliding-window or token-bucket")
      }
      return {
        rateLimiter: values["rate-limiter"]!,
        algorithm: algorithm as "fixed-window" | "sliding-window" | "token-bucket" | undefined,
        tenant,
        keyPrefix
      }
    }
    case "replay-guard":
      return { replayGuard: values["replay-guard"]!, tenant, keyPrefix }
    case "key-value-store":
      if (tenant !== undefined) throw new Usage("a key-value store has no tenants")
      return { keyValueStore: values["key-value-store"]!, keyPrefix }
  }
}

const timeoutOf = (values: Values): number => {
  const millis = values.timeout === undefined ? 2_000 : Number(values.timeout)
  if (!Number.isSafeInteger(millis) || millis <= 0)
    throw new Usage("--timeout must be a positive whole number of millis")
  return millis
}

/** runs one command: what to print on stdout, and the exit code */
/**
 * A stray positional argument: named by its position, never repeated (it may be a URL with a password, typed where an
 * option belongs).
 */
const unexpected = (command: string) => new Usage(`${command} takes no positional argument (options only)`)

export const run = async (
  argv: ReadonlyArray<string>,
  env: Readonly<Record<string, string | undefined>>
): Promise<{ readonly out: string; readonly code: number }> => {
  const { positionals, values } = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true })
  const [command, ...rest] = positionals
  if (values.help === true || command === undefined || command === "help") return { out: HELP, code: 0 }
  // a layout function's usage error (an empty name, a bad prefix or tenant) is the caller's, too
  const layout = <A>(f: () => A): A => {
    try {
      return f()
    } catch (error) {
      throw new Usage(
        error instanceof Error ? error.message.replace(/^effect-failclosed: ([A-Za-z.]+: )?/, "") : String(error)
      )
    }
  }
  switch (command) {
    case "key": {
      if (rest.length > 0) throw unexpected("key")
      const keyspace = required(values.keyspace, "--keyspace")
      const key = required(values.key, "--key")
      const tenant = tenantOf(values)
      return {
        out: layout(() => keyspaceEntryKey({ keyspace, tenant, key, keyPrefix: values["key-prefix"] })) + "\n",
        code: 0
      }
    }
    case "pattern": {
      if (rest.length > 0) throw unexpected("pattern")
      return { out: layout(() => scanPattern(targetOf(values))) + "\n", code: 0 }
    }
    case "inspect": {
      if (rest.length !== 1) throw new Usage("inspect takes one key")
      const url = values.url ?? env["REDIS_URL"]
      if (url === undefined || url === "") throw new Usage("give --url or set REDIS_URL")
      // never echoed: it may carry a password
      const problem = redisUrlProblem(url)
      if (problem !== undefined) throw new Usage(`the Redis URL ${problem}`)
      const inspection = await inspect(rest[0]!, {
        url,
        username: env["REDIS_USERNAME"] || undefined,
        password: env["REDIS_PASSWORD"] || undefined,
        timeoutMillis: timeoutOf(values)
      })
      return { out: JSON.stringify(inspection, null, 2) + "\n", code: inspection.kind === "missing" ? 1 : 0 }
    }
    default:
      // not echoed: a mistyped line may hold a URL with its password where the command was expected
      throw new Usage("unknown command: the commands are key, pattern and inspect")
  }
}
