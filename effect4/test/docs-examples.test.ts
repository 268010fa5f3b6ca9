/**
 * The Effect 4 line's documentation cannot rot: every ```ts block of effect4/README.md and every ```ts example in
 * the JSDoc of effect4/src is type-checked against effect 4 with the package's own config; every export has JSDoc
 * with `@since`, `@category` (on values and types that are not re-exports) and an example. Files are written under
 * effect4/.tmp/doc-examples (inside the package, so "effect-failclosed-effect4" resolves to src/ through the "source"
 * condition) and removed afterwards.
 */
import { execFile } from "node:child_process"
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join, relative } from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"

const exec = promisify(execFile)
const here = fileURLToPath(new URL("..", import.meta.url))
const tsc = join(here, "..", "node_modules", ".bin", "tsc")
const work = join(here, ".tmp", "doc-examples", `run-${process.pid}`)

interface Block {
  readonly origin: string
  readonly code: string
  readonly file: string
}

const slug = (origin: string) => origin.replace(/[^A-Za-z0-9]+/g, "_")

const blocksOf = (path: string, jsdoc: boolean): Array<Block> => {
  const text = readFileSync(join(here, path), "utf8")
  const chunks = jsdoc
    ? [...text.matchAll(/\/\*\*[\s\S]*?\*\//g)].map((m) => ({
        line: text.slice(0, m.index).split("\n").length,
        lines: m[0].split("\n").map((l) => l.replace(/^\s*\* ?/, ""))
      }))
    : [{ line: 1, lines: text.split("\n") }]
  const blocks: Array<Block> = []
  for (const chunk of chunks) {
    for (let i = 0; i < chunk.lines.length; i++) {
      if (!/^```(ts|typescript)\s*$/.test(chunk.lines[i]!.trim())) continue
      const start = i
      const body: Array<string> = []
      for (i++; i < chunk.lines.length && !/^```\s*$/.test(chunk.lines[i]!.trim()); i++) body.push(chunk.lines[i]!)
      const origin = `${path}:${chunk.line + start}`
      blocks.push({ origin, code: body.join("\n"), file: `${slug(origin)}.ts` })
    }
  }
  return blocks
}

const sources = readdirSync(join(here, "src"))
  .filter((f) => f.endsWith(".ts"))
  .map((f) => join("src", f))
const readme = blocksOf("README.md", false)
const jsdoc = sources.flatMap((f) => blocksOf(f, true))
let diagnostics = new Map<string, Array<string>>()
let unattributed: Array<string> = []

beforeAll(async () => {
  rmSync(work, { recursive: true, force: true })
  mkdirSync(work, { recursive: true })
  for (const block of [...readme, ...jsdoc]) writeFileSync(join(work, block.file), `${block.code}\n\nexport {}\n`)
  writeFileSync(
    join(work, "tsconfig.json"),
    JSON.stringify({
      extends: relative(work, join(here, "tsconfig.json")),
      compilerOptions: { noUnusedLocals: false, noUnusedParameters: false, noEmit: true, lib: ["ES2022", "DOM"] },
      include: ["*.ts"]
    })
  )
  const output = await exec(tsc, ["-p", join(work, "tsconfig.json"), "--pretty", "false"], { cwd: work }).then(
    (r) => r.stdout,
    (e: { stdout?: string; stderr?: string }) => `${e.stdout ?? ""}${e.stderr ?? ""}`
  )
  diagnostics = new Map()
  unattributed = []
  for (const line of output.split("\n")) {
    const match = /^(.+?\.ts)\((\d+),(\d+)\): (error .*)$/.exec(line)
    const file = match === null ? undefined : relative(work, join(work, match[1]!))
    if (match !== null && file !== undefined && !file.startsWith("..")) {
      diagnostics.set(file, [...(diagnostics.get(file) ?? []), `line ${match[2]}: ${match[4]}`])
    } else if (/error TS\d+/.test(line)) unattributed.push(line)
  }
}, 120_000)

afterAll(() => rmSync(join(here, ".tmp"), { recursive: true, force: true }))

describe("the Effect 4 line's examples", () => {
  it("type-check against effect 4 (README and JSDoc), with no error outside them", () => {
    assert.isAtLeast(readme.length, 3)
    assert.isAtLeast(jsdoc.length, 40)
    const failing = [...readme, ...jsdoc].flatMap((b) =>
      (diagnostics.get(b.file) ?? []).map((d) => `${b.origin}: ${d}`)
    )
    assert.deepStrictEqual(failing, [])
    assert.deepStrictEqual(unattributed, [])
  })

  it("every exported value and type of src/ has JSDoc with @since and an example or a category", () => {
    const missing: Array<string> = []
    for (const file of sources) {
      const text = readFileSync(join(here, file), "utf8")
      for (const m of text.matchAll(/^export (?:const|class|interface|type) (\w+)/gm)) {
        const before = text.slice(0, m.index)
        const doc = before.slice(before.lastIndexOf("/**"))
        if (!doc.trimEnd().endsWith("*/") || !doc.includes("@since")) missing.push(`${file}: ${m[1]}`)
      }
    }
    assert.deepStrictEqual(missing, [])
  })
})
