/**
 * Documentation that cannot rot:
 *
 * - every ```ts block of README.md and docs/*.md is type-checked with the repository's tsc and
 *   config, and run: with tsx, or with vitest when it is a test (imports @effect/vitest). Blocks
 *   get REDIS_URL of a throw-away redis-server, so one that needs Redis has one (and none can
 *   reach the machine's own). A block preceded by `<!-- not-run -->` is type-checked only.
 * - every ```ts example in the JSDoc of src/ is type-checked.
 * - every export of src/ has JSDoc with a description, `@since`, `@category` and an example, and
 *   `npm run docs` (scripts/docs.ts) renders the API reference.
 *
 * Files are written under .tmp/doc-examples/<run>/ (inside the repository, so "effect-failclosed"
 * resolves to src/ through the "source" condition, as in the tests) and removed afterwards.
 */
import { execFile } from "node:child_process"
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join, relative } from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { type RedisServer, startRedis } from "./support/RedisServer.js"
import { collect, generate, problems } from "../scripts/docs.js"

const exec = promisify(execFile)
const root = fileURLToPath(new URL("..", import.meta.url))
const bin = (name: string) => join(root, "node_modules", ".bin", name)
const work = join(root, ".tmp", "doc-examples", `run-${process.pid}`)

interface Block {
  /** `README.md:42`, `src/Keyspace.ts:170`: where the block starts */
  readonly origin: string
  readonly code: string
  readonly run: boolean
  readonly isTest: boolean
  /** the file it is written to, relative to `work` */
  readonly file: string
}

const slug = (origin: string) => origin.replace(/[^A-Za-z0-9]+/g, "_")

/** ```ts blocks of a Markdown file */
const markdownBlocks = (path: string): Array<Block> => {
  const lines = readFileSync(join(root, path), "utf8").split("\n")
  const blocks: Array<Block> = []
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```(ts|typescript)\s*$/.exec(lines[i]!)
    if (open === null) continue
    const start = i
    const body: Array<string> = []
    for (i++; i < lines.length && !/^\s*```\s*$/.test(lines[i]!); i++) body.push(lines[i]!.slice(open[1]!.length))
    let previous = start - 1
    while (previous >= 0 && lines[previous]!.trim() === "") previous--
    const notRun = previous >= 0 && lines[previous]!.trim() === "<!-- not-run -->"
    const code = body.join("\n")
    const isTest = /from "@effect\/vitest"/.test(code)
    const origin = `${path}:${start + 1}`
    blocks.push({
      origin,
      code,
      run: !notRun,
      isTest,
      file: join("md", `${slug(origin)}${isTest ? ".test" : ""}.ts`)
    })
  }
  return blocks
}

/** ```ts blocks inside the JSDoc comments of a source file */
const jsDocBlocks = (path: string): Array<Block> => {
  const text = readFileSync(join(root, path), "utf8")
  const blocks: Array<Block> = []
  for (const comment of text.matchAll(/\/\*\*[\s\S]*?\*\//g)) {
    const lines = comment[0].split("\n").map((l) => l.replace(/^\s*\* ?/, ""))
    const commentLine = text.slice(0, comment.index).split("\n").length
    for (let i = 0; i < lines.length; i++) {
      if (!/^```(ts|typescript)\s*$/.test(lines[i]!)) continue
      const start = i
      const body: Array<string> = []
      for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++) body.push(lines[i]!)
      const origin = `${path}:${commentLine + start}`
      blocks.push({
        origin,
        code: body.join("\n"),
        run: false,
        isTest: false,
        file: join("jsdoc", `${slug(origin)}.ts`)
      })
    }
  }
  return blocks
}

const sourceFiles = (dir: string): Array<string> =>
  readdirSync(join(root, dir), { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sourceFiles(join(dir, entry.name)) : entry.name.endsWith(".ts") ? [join(dir, entry.name)] : []
  )

const guides = readdirSync(join(root, "docs"))
  .filter((f) => f.endsWith(".md"))
  .sort()
  .map((f) => join("docs", f))
const markdown = ["README.md", ...guides].flatMap(markdownBlocks)
const jsdoc = sourceFiles("src").flatMap(jsDocBlocks)

/** tsc diagnostics by file (relative to `work`) */
let diagnostics = new Map<string, Array<string>>()
/** tsc errors that belong to no block (a config error, an error in src/ itself): none may pass unnoticed */
let unattributed: Array<string> = []
let redis: RedisServer | undefined

beforeAll(async () => {
  rmSync(work, { recursive: true, force: true })
  for (const block of [...markdown, ...jsdoc]) {
    mkdirSync(join(work, block.file, ".."), { recursive: true })
    // a module of its own, so top-level names of different blocks never clash
    writeFileSync(join(work, block.file), `${block.code}\n\nexport {}\n`)
  }
  writeFileSync(
    join(work, "tsconfig.json"),
    JSON.stringify({
      extends: relative(work, join(root, "tsconfig.json")),
      // an example may declare what it does not use
      compilerOptions: { noUnusedLocals: false, noUnusedParameters: false, noEmit: true },
      include: ["**/*.ts"]
    })
  )
  const result = await exec(bin("tsc"), ["-p", join(work, "tsconfig.json"), "--pretty", "false"], { cwd: work }).then(
    (r) => r.stdout,
    (e: { stdout?: string; stderr?: string }) => `${e.stdout ?? ""}${e.stderr ?? ""}`
  )
  diagnostics = new Map()
  unattributed = []
  const files = new Set([...markdown, ...jsdoc].map((b) => b.file))
  for (const line of result.split("\n")) {
    const match = /^(.+?\.ts)\((\d+),(\d+)\): (error .*)$/.exec(line)
    const file = match === null ? undefined : relative(work, join(work, match[1]!))
    if (match !== null && file !== undefined && files.has(file)) {
      diagnostics.set(file, [...(diagnostics.get(file) ?? []), `line ${match[2]}: ${match[4]}`])
    } else if (/error TS\d+/.test(line)) {
      unattributed.push(line)
    }
  }
  redis = await startRedis()
}, 120_000)

afterAll(async () => {
  await redis?.stop()
  rmSync(work, { recursive: true, force: true })
})

const problemsOf = (block: Block) => diagnostics.get(block.file) ?? []

it("type-checks the examples without errors outside them (tsc ran, src/ compiles)", () => {
  expect(unattributed).toEqual([])
})

describe("README.md and docs/*.md", () => {
  it("have ts code blocks to check", () => {
    expect(markdown.filter((b) => b.origin.startsWith("README.md")).length).toBeGreaterThanOrEqual(3)
    for (const guide of ["choosing-a-mode", "testing", "handling-unavailability", "operations"]) {
      expect(guides).toContain(`docs/${guide}.md`)
      expect(markdown.some((b) => b.origin.startsWith(`docs/${guide}.md`))).toBe(true)
    }
  })

  it.each(markdown.map((b) => [b.origin, b] as const))("%s type-checks", (_, block) => {
    expect(problemsOf(block)).toEqual([])
  })

  const runnable = markdown.filter((b) => b.run && !b.isTest)
  // each block is its own process: run a few at once
  it.concurrent.each(runnable.map((b) => [b.origin, b] as const))(
    "%s runs",
    async (_, block) => {
      const env = { ...process.env, REDIS_URL: redis!.url, NODE_OPTIONS: "" }
      await exec(process.execPath, ["--conditions=source", "--import", "tsx", join(work, block.file)], {
        cwd: root,
        env,
        timeout: 30_000
      }).catch((e: { code?: number; stdout?: string; stderr?: string }) => {
        throw new Error(`${block.origin} exited with ${e.code}:\n${e.stdout ?? ""}${e.stderr ?? ""}`)
      })
    },
    40_000
  )

  const tests = markdown.filter((b) => b.run && b.isTest)
  it.runIf(tests.length > 0)(
    "test blocks pass under vitest",
    async () => {
      writeFileSync(
        join(work, "vitest.config.mjs"),
        `export default {
  root: ${JSON.stringify(work)},
  resolve: { conditions: ["source"] },
  ssr: { resolve: { conditions: ["source"] } },
  test: { include: ["md/**/*.test.ts"], watch: false, pool: "forks" }
}
`
      )
      const result = await exec(bin("vitest"), ["run", "--config", join(work, "vitest.config.mjs")], {
        cwd: work,
        env: { ...process.env, REDIS_URL: redis!.url, NO_COLOR: "1", FORCE_COLOR: "0" },
        timeout: 60_000
      }).catch((e: { stdout?: string; stderr?: string }) => {
        throw new Error(`doc test blocks failed:\n${e.stdout ?? ""}${e.stderr ?? ""}`)
      })
      for (const block of tests) expect(result.stdout).toContain(`${slug(block.origin)}.test.ts`)
      expect(result.stdout).toMatch(/Tests\s+\d+ passed/)
      expect(result.stdout).not.toMatch(/failed/)
    },
    70_000
  )
})

describe("JSDoc of src/", () => {
  it("has ts examples to check", () => {
    expect(jsdoc.length).toBeGreaterThan(20)
  })

  it.each(jsdoc.map((b) => [b.origin, b] as const))("example at %s type-checks", (_, block) => {
    expect(problemsOf(block)).toEqual([])
  })

  it("documents every export with a description, @since, @category and an example; npm run docs renders it", () => {
    const modules = collect()
    expect(modules.map((m) => m.name)).toContain("index")
    const out = join(work, "api")
    const written = generate(modules, out)
    expect(written.length).toBe(modules.length + 1)
    for (const m of modules) expect(existsSync(join(out, `${m.name}.md`))).toBe(true)
    expect(problems(modules)).toEqual([])
  }, 60_000)
})
