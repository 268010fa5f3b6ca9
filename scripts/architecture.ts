/**
 * `npm run architecture`: writes the generated sections of docs/architecture.md from the tree itself, so that the
 * parts that drift cannot: the file map (every source file of each package with the first sentence of its module
 * comment), the lines per floor, and the hops of one `Keyspace.get` (Redis hit, and near hit) as the call stacks of a
 * real call show them. `test/architecture.test.ts` runs the same generation and fails when the committed file differs.
 *
 *   npm run architecture              # rewrite the generated sections
 *   npm run architecture -- --check   # exit 1 when docs/architecture.md is out of date
 *
 * A generated section sits between `<!-- generated:NAME -->` and `<!-- /generated:NAME -->`; everything outside the
 * markers is written by hand.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { join, relative } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { Keyspace, RedisClient, strictDistributed } from "../src/index.js"
import { startRedis } from "../test/support/RedisServer.js"

const root = fileURLToPath(new URL("..", import.meta.url))
const DOC = join(root, "docs", "architecture.md")

/** the packages whose sources are mapped, in the order the file map lists them */
const PACKAGES = [
  { name: "core (`@effect-failclosed/core`, no Effect)", dir: "core/src" },
  { name: "Effect 3 package (`effect-failclosed`, the repository root)", dir: "src" },
  { name: "Effect 4 package", dir: "effect4/src" }
] as const

const sourceFiles = (dir: string): Array<string> =>
  readdirSync(dir, { withFileTypes: true })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .flatMap((entry) => {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) return sourceFiles(path)
      return entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts") ? [path] : []
    })

const lineCount = (path: string): number => readFileSync(path, "utf8").split("\n").length - 1

/** the first sentence of a file's leading `/** … *\/` comment, on one line */
const summaryOf = (path: string): string => {
  const text = readFileSync(path, "utf8")
  const comment = /^\s*\/\*\*([\s\S]*?)\*\//.exec(text)?.[1]
  if (comment === undefined) return ""
  const prose = comment
    .split("\n")
    .map((line) => line.replace(/^\s*\*\s?/, ""))
    .filter((line) => !line.startsWith("@"))
    .join(" ")
    .replace(/\s+/g, " ")
    .trim()
  const sentence = /^(.+?\.)(\s|$)/.exec(prose)?.[1] ?? prose
  const short = sentence.length <= 160 ? sentence : sentence.slice(0, 157).replace(/\s+\S*$/, "") + " …"
  return short.replace(/\|/g, "\\|")
}

const fileMap = (): string => {
  const lines: Array<string> = []
  for (const pkg of PACKAGES) {
    const dir = join(root, pkg.dir)
    if (!existsSync(dir)) continue
    lines.push(`**${pkg.name}**, \`${pkg.dir}/\`:`, "", "| file | lines | what it is |", "| --- | ---: | --- |")
    for (const file of sourceFiles(dir)) {
      lines.push(`| \`${relative(dir, file)}\` | ${lineCount(file)} | ${summaryOf(file)} |`)
    }
    lines.push("")
  }
  return lines.join("\n").trimEnd()
}

/** the floors of the packages: what each holds, and its lines */
const floors = (): string => {
  const rows: Array<[string, string, number]> = []
  const sum = (files: ReadonlyArray<string>) => files.reduce((n, f) => n + lineCount(f), 0)
  for (const pkg of PACKAGES) {
    const dir = join(root, pkg.dir)
    if (!existsSync(dir)) continue
    const files = sourceFiles(dir)
    const internal = files.filter((f) => relative(dir, f).startsWith("internal/"))
    const outer = files.filter((f) => !internal.includes(f))
    if (internal.length === 0) {
      rows.push([pkg.name, `${files.length} files`, sum(files)])
    } else {
      rows.push([pkg.name + ": public modules", `${outer.length} files`, sum(outer)])
      rows.push([pkg.name + ": `internal/`", `${internal.length} files`, sum(internal)])
    }
  }
  return [
    "| floor | files | lines |",
    "| --- | ---: | ---: |",
    ...rows.map(
      ([name, files, lines]) => `| ${name} | ${files.replace(/ files$/, "")} | ${lines.toLocaleString("en-US")} |`
    )
  ].join("\n")
}

// --- the hops of one get -----------------------------------------------------------------------------------------

interface Frame {
  readonly file: string
  readonly fn: string
}

/** the frames of a stack that are in this repository's sources (core/src, src, effect4/src), outermost first */
const ownFrames = (stack: string): Array<Frame> => {
  const frames: Array<Frame> = []
  for (const line of stack.split("\n").slice(1)) {
    const m = /^\s*at (?:(.*?) \()?(?:file:\/\/)?([^()]+?):\d+:\d+\)?$/.exec(line)
    if (m === null) continue
    const path = m[2]!
    const rel = relative(root, path.startsWith("/") ? path : fileURLToPath(pathToFileURL(path)))
    if (!/^(core\/src|src|effect4\/src)\//.test(rel)) continue
    const raw = m[1]?.replace(/ \[as [^\]]+\]$/, "")
    const name = raw === undefined || raw === "<anonymous>" ? "(anonymous)" : raw
    const fn = name.replace(/^async /, "")
    frames.push({ file: rel, fn })
  }
  return frames.reverse()
}

const describeHops = (title: string, stacks: ReadonlyArray<{ readonly label: string; readonly stack: string }>) => {
  const all = stacks.map((s) => ({ label: s.label, frames: ownFrames(s.stack) }))
  const files = new Set(all.flatMap((s) => s.frames.map((f) => f.file)))
  const fns = new Set(all.flatMap((s) => s.frames.map((f) => `${f.file}#${f.fn}`)))
  const lines = [
    `${title}: ${files.size} files, ${fns.size} functions of this repository on the stack (Effect's runtime and ioredis`,
    "frames left out):",
    ""
  ]
  for (const s of all) {
    lines.push(`- ${s.label}: ` + s.frames.map((f) => `\`${f.fn}\` (${f.file})`).join(" → "))
  }
  return lines.join("\n")
}

/**
 * One StrictDistributed `Keyspace.get` hit on a real redis-server (flat key, no near cache), and one near hit: the
 * stacks at the points where the call leaves this repository's code (ioredis' `sendCommand`; the entry's
 * `JSON.parse` on the way back; the clock read of a near hit).
 */
const hops = async (): Promise<string> => {
  const server = await startRedis()
  try {
    const Profiles = Keyspace.make({
      name: "architecture-profiles",
      key: Schema.Struct({ userId: Schema.Number }),
      value: Schema.Struct({ name: Schema.String }),
      timeToLive: "1 minute"
    })
    const Near = Keyspace.make({
      name: "architecture-near",
      key: Schema.Struct({ userId: Schema.Number }),
      value: Schema.Struct({ name: Schema.String }),
      timeToLive: "1 minute",
      nearCache: { capacity: 100 }
    })
    const previousLimit = Error.stackTraceLimit
    Error.stackTraceLimit = 200
    const captured: Record<string, string> = {}
    let armed: "redis" | "near" | undefined
    // reading `stack` may load source maps (JSON.parse, clock reads): those calls are not the call's own
    let capturing = false
    const capture = (label: string) => {
      if (armed === undefined || capturing || captured[label] !== undefined) return
      capturing = true
      try {
        captured[label] = new Error().stack ?? ""
      } finally {
        capturing = false
      }
    }
    const parse = JSON.parse
    JSON.parse = ((text: string, reviver?: Parameters<typeof JSON.parse>[1]) => {
      if (armed === "redis") capture("up")
      return parse(text, reviver)
    }) as typeof JSON.parse
    // the near cache reads a monotonic clock (performance.now) or Effect's Clock: either one marks the near hit
    const performanceNow = performance.now.bind(performance)
    performance.now = () => {
      if (armed === "near") capture("near")
      return performanceNow()
    }
    const clock = Clock.make()
    const capturingClock: Clock.Clock = {
      ...clock,
      unsafeCurrentTimeMillis: () => {
        if (armed === "near") capture("near")
        return clock.unsafeCurrentTimeMillis()
      },
      currentTimeMillis: Effect.sync(() => {
        if (armed === "near") capture("near")
        return clock.unsafeCurrentTimeMillis()
      })
    }
    const program = Effect.gen(function* () {
      const redis = yield* RedisClient
      const client = redis.client
      const send = client.sendCommand.bind(client)
      client.sendCommand = ((command: unknown, stream?: unknown, node?: unknown) => {
        if (armed === "redis") capture("down")
        return (send as (...args: Array<unknown>) => unknown)(command, stream, node)
      }) as typeof client.sendCommand
      yield* Profiles.set({ userId: 12345 }, { name: "Ada" })
      yield* Near.set({ userId: 12345 }, { name: "Ada" })
      // warm: the first calls take paths a steady call does not (connection, scripts, memo fills)
      for (let i = 0; i < 3; i++) yield* Profiles.get({ userId: 12345 })
      armed = "redis"
      const hit = yield* Profiles.get({ userId: 12345 })
      armed = undefined
      if (Option.isNone(hit)) throw new Error("architecture: the Redis get missed")
      // a near hit once the tracking connection serves; on a loaded machine the proof may lapse between two reads, so
      // the captured stack is kept only from a read that was a near hit
      for (let attempt = 0; attempt < 500; attempt++) {
        delete captured["near"]
        armed = "near"
        const near = yield* Effect.withClock(Near.get({ userId: 12345 }), capturingClock)
        armed = undefined
        if (Option.isSome(near) && near.value.near && captured["near"] !== undefined) return
        yield* Effect.sleep("10 millis")
      }
      throw new Error("architecture: no near hit in 5 s")
    })
    const layer = strictDistributed().pipe(Layer.provideMerge(RedisClient.layer({ url: server.url })))
    try {
      await Effect.runPromise(Effect.scoped(Effect.provide(program, layer)))
    } finally {
      JSON.parse = parse
      performance.now = performanceNow
      Error.stackTraceLimit = previousLimit
    }
    const missing = ["down", "up", "near"].filter((k) => captured[k] === undefined)
    if (missing.length > 0) throw new Error(`architecture: no stack captured for ${missing.join(", ")}`)
    return [
      describeHops("One StrictDistributed `Keyspace.get` hit (flat key, no near cache)", [
        { label: "down, to ioredis' `sendCommand`", stack: captured["down"]! },
        { label: "up, to the entry's `JSON.parse`", stack: captured["up"]! }
      ]),
      "",
      describeHops("One near hit", [{ label: "to the clock read of the freshness check", stack: captured["near"]! }])
    ].join("\n")
  } finally {
    await server.stop()
  }
}

// --- the document ------------------------------------------------------------------------------------------------

/** the generated sections, by marker name */
export const generate = async (): Promise<Record<string, string>> => ({
  files: fileMap(),
  floors: floors(),
  hops: await hops()
})

/** `doc` with every generated section replaced */
export const render = (doc: string, sections: Record<string, string>): string =>
  doc.replace(
    /(<!-- generated:([a-z-]+) -->)[\s\S]*?(<!-- \/generated:\2 -->)/g,
    (whole, open: string, name: string, close: string) =>
      sections[name] === undefined ? whole : `${open}\n\n${sections[name]}\n\n${close}`
  )

export const readDoc = (): string => readFileSync(DOC, "utf8")

const main = async () => {
  const check = process.argv.includes("--check")
  const doc = readDoc()
  const next = render(doc, await generate())
  if (check) {
    if (next !== doc) {
      console.error("docs/architecture.md is out of date: run `npm run architecture`")
      process.exit(1)
    }
    return
  }
  writeFileSync(DOC, next)
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    console.error(error)
    process.exit(1)
  })
}
