/**
 * `npm run docs`: the API reference in docs/api/, one Markdown page per public module.
 *
 * Why not TypeDoc or @effect/docgen: both drive the TypeScript 5 compiler API and declare
 * `typescript` 5.x/6.0 as a peer, which this repository (TypeScript 7, the native compiler)
 * does not have. This script uses what TypeScript 7 ships instead: `tsc` emits the declaration
 * files (the public signatures, with their JSDoc), and the parser of `typescript/unstable/sync`
 * reads them. Nothing is fetched; it runs offline.
 *
 * `npm run docs -- --check` only reports exports whose JSDoc lacks a description, `@since`,
 * `@category` or an example, and exits 1 if there are any.
 */
import { execFileSync } from "node:child_process"
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { basename, dirname, join, relative, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import type { Node, SourceFile } from "typescript/unstable/ast"
import { ModifierFlags, SyntaxKind } from "typescript/unstable/ast"
import { API } from "typescript/unstable/sync"

/** one exported declaration of a module */
export interface ExportDoc {
  readonly name: string
  readonly kind: string
  /** the declaration as it appears in the .d.ts file, without its JSDoc */
  readonly signature: string
  readonly description: string
  readonly since: string | undefined
  readonly category: string | undefined
  /** the Markdown of each `@example` tag */
  readonly examples: ReadonlyArray<string>
  readonly deprecated: string | undefined
  /** `src/<file>.ts:<line>` of the declaration */
  readonly location: string
}

/** one public module (a file directly under src/) */
export interface ModuleDoc {
  readonly name: string
  readonly description: string
  readonly since: string | undefined
  readonly exports: ReadonlyArray<ExportDoc>
  /** `export … from` statements (src/index.ts): re-exported names */
  readonly reexports: ReadonlyArray<{ readonly names: string; readonly from: string }>
}

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..")
const tsc = join(root, "node_modules", ".bin", "tsc")

interface ParsedJsDoc {
  readonly description: string
  readonly tags: ReadonlyArray<{ readonly tag: string; readonly text: string }>
}

/** splits a `/** … *\/` comment into its description and its tags (an example's code keeps its indentation) */
const parseJsDoc = (raw: string): ParsedJsDoc => {
  const lines = raw
    .replace(/^\/\*\*/, "")
    .replace(/\*\/$/, "")
    .split("\n")
    .map((line, i) => (i === 0 ? line.trimStart() : line.replace(/^\s*\* ?/, "").replace(/^\s*\*$/, "")))
  const description: Array<string> = []
  const tags: Array<{ tag: string; lines: Array<string> }> = []
  let inFence = false
  for (const line of lines) {
    const tag = inFence ? null : /^@(\w+)\s?(.*)$/.exec(line)
    if (tag) tags.push({ tag: tag[1]!, lines: [tag[2]!] })
    else (tags.length > 0 ? tags[tags.length - 1]!.lines : description).push(line)
    if (/^\s*```/.test(line)) inFence = !inFence
  }
  return {
    description: description.join("\n").trim(),
    tags: tags.map((t) => ({ tag: t.tag, text: t.lines.join("\n").trim() }))
  }
}

const nameOf = (statement: Node): string | undefined => {
  const s = statement as unknown as {
    name?: { text?: string }
    declarationList?: { declarations: ReadonlyArray<{ name: { text?: string } }> }
  }
  if (s.declarationList !== undefined) return s.declarationList.declarations[0]?.name.text
  return s.name?.text
}

const KINDS: Partial<Record<SyntaxKind, string>> = {
  [SyntaxKind.VariableStatement]: "const",
  [SyntaxKind.FunctionDeclaration]: "function",
  [SyntaxKind.ClassDeclaration]: "class",
  [SyntaxKind.InterfaceDeclaration]: "interface",
  [SyntaxKind.TypeAliasDeclaration]: "type",
  [SyntaxKind.ModuleDeclaration]: "namespace",
  [SyntaxKind.EnumDeclaration]: "enum"
}

const lineOf = (text: string, pos: number): number => text.slice(0, pos).split("\n").length

/** where `name` is declared in src/<module>.ts (the .d.ts lines differ) */
const sourceLine = (sourceText: string, name: string, kind: string): number => {
  const keyword = kind === "const" ? "(?:const|let)" : kind === "namespace" ? "(?:namespace|module)" : kind
  const match = new RegExp(`^export (?:declare )?(?:abstract )?${keyword} ${name}\\b`, "m").exec(sourceText)
  return match === null ? 1 : lineOf(sourceText, match.index)
}

const lastJsDoc = (statement: Node, text: string): { raw: string; end: number } | undefined => {
  const docs = (statement as unknown as { jsDoc?: ReadonlyArray<Node> }).jsDoc
  const doc = docs?.[docs.length - 1]
  if (doc === undefined) return undefined
  const start = text.indexOf("/**", doc.pos)
  return { raw: text.slice(start, doc.end), end: doc.end }
}

const moduleDoc = (sf: SourceFile, name: string, sourceText: string): ModuleDoc => {
  const text = sf.text
  const exports: Array<ExportDoc> = []
  const reexports: Array<{ names: string; from: string }> = []
  // the module's own comment opens the source file (tsc does not always keep it in the .d.ts)
  const opening = /^\s*(\/\*\*[\s\S]*?\*\/)/.exec(sourceText)
  const header: ParsedJsDoc = opening === null ? { description: "", tags: [] } : parseJsDoc(opening[1]!)
  for (const statement of sf.statements) {
    const doc = lastJsDoc(statement, text)
    if (statement.kind === SyntaxKind.ExportDeclaration) {
      const body = text.slice(statement.getStart(sf, false), statement.end).trim()
      const from = /from\s+"([^"]+)"/.exec(body)?.[1] ?? ""
      const names = body.replace(/\s+from\s+"[^"]+";?$/, "").replace(/^export\s+/, "")
      reexports.push({ names: names.replace(/\s+/g, " "), from })
      continue
    }
    const kind = KINDS[statement.kind]
    const declName = nameOf(statement)
    const flags = (statement as unknown as { modifierFlags?: number }).modifierFlags ?? 0
    if (kind === undefined || declName === undefined || (flags & ModifierFlags.Export) === 0) continue
    const parsed = doc === undefined ? { description: "", tags: [] } : parseJsDoc(doc.raw)
    const tag = (t: string) => parsed.tags.find((x) => x.tag === t)?.text
    if (parsed.tags.some((t) => t.tag === "internal")) continue
    exports.push({
      name: declName,
      kind,
      signature: text.slice(statement.getStart(sf, false), statement.end).trim(),
      description: parsed.description,
      since: tag("since"),
      category: tag("category"),
      examples: parsed.tags.filter((t) => t.tag === "example").map((t) => t.text),
      deprecated: tag("deprecated"),
      location: `src/${name}.ts:${sourceLine(sourceText, declName, kind)}`
    })
  }
  return {
    name,
    description: header.description,
    since: header.tags.find((t) => t.tag === "since")?.text,
    exports,
    reexports
  }
}

/** emits the declarations of src/ into a temporary folder and reads every public module */
export const collect = (): ReadonlyArray<ModuleDoc> => {
  const out = join(root, ".tmp", `docs-dts-${process.pid}`)
  rmSync(out, { recursive: true, force: true })
  run(
    tsc,
    [
      "-p",
      join(root, "tsconfig.build.json"),
      "--outDir",
      out,
      "--emitDeclarationOnly",
      "--declarationMap",
      "false",
      "--sourceMap",
      "false"
    ],
    "tsc could not emit the declarations of src/"
  )
  const modules = readdirSync(join(root, "src"))
    .filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts"))
    .map((f) => basename(f, ".ts"))
    .sort((a, b) => (a === "index" ? -1 : b === "index" ? 1 : a.localeCompare(b)))
  writeFileSync(
    join(out, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        module: "NodeNext",
        moduleResolution: "NodeNext",
        noEmit: true,
        skipLibCheck: true,
        types: []
      },
      files: modules.map((m) => `${m}.d.ts`)
    })
  )
  const api = new API({ cwd: root })
  try {
    const snapshot = api.updateSnapshot({ openProject: join(out, "tsconfig.json") })
    const project = snapshot.getProjects()[0]
    if (project === undefined) throw new Error("docs: the declaration project did not open")
    return modules.map((m) => {
      const sf = project.program.getSourceFile(join(out, `${m}.d.ts`))
      if (sf === undefined) throw new Error(`docs: no declarations for src/${m}.ts`)
      const sourceText = readText(join(root, "src", `${m}.ts`))
      return moduleDoc(sf, m, sourceText)
    })
  } finally {
    api.close()
    rmSync(out, { recursive: true, force: true })
  }
}

const run = (command: string, args: ReadonlyArray<string>, what: string): void => {
  try {
    execFileSync(command, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" })
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string }
    throw new Error(`docs: ${what}:\n${e.stdout ?? ""}${e.stderr ?? ""}`)
  }
}

const readText = (path: string): string => readFileSync(path, "utf8")

/** exports whose JSDoc lacks what every export must have: a description, `@since`, `@category`, an example */
export const problems = (modules: ReadonlyArray<ModuleDoc>): ReadonlyArray<string> => {
  const found: Array<string> = []
  for (const m of modules) {
    if (m.since === undefined) found.push(`src/${m.name}.ts:1 module: no @since in the module's JSDoc`)
    for (const e of m.exports) {
      // `export type X = typeof X.Type` next to `export const X`: one documented thing
      const companion = e.kind === "type" && m.exports.some((o) => o.name === e.name && o.kind === "const")
      const missing = [
        e.description === "" && !companion ? "a description" : undefined,
        e.since === undefined ? "@since" : undefined,
        e.category === undefined ? "@category" : undefined,
        e.examples.length === 0 && !companion ? "an @example" : undefined
      ].filter((x): x is string => x !== undefined)
      if (missing.length > 0) found.push(`${e.location} ${e.kind} ${e.name}: missing ${missing.join(", ")}`)
    }
  }
  return found
}

/** `{@link x}` becomes `x` in code style: the pages are plain Markdown */
const links = (text: string): string => text.replace(/\{@link\s+([^}\s|]+)[^}]*\}/g, "`$1`")

const anchor = (name: string): string => name.toLowerCase().replace(/[^a-z0-9_-]/g, "")

/** the modules published as sub-path exports of package.json (`effect-failclosed/<name>`), not through the root */
const subPaths = (): ReadonlySet<string> => {
  const manifest = JSON.parse(readText(join(root, "package.json"))) as { exports?: Record<string, unknown> }
  return new Set(
    Object.keys(manifest.exports ?? {})
      .filter((key) => /^\.\/[A-Za-z]+$/.test(key))
      .map((key) => key.slice(2))
  )
}

const renderModule = (m: ModuleDoc): string => {
  const out: Array<string> = [`# ${m.name === "index" ? "effect-failclosed" : m.name}`, ""]
  if (subPaths().has(m.name)) out.push(`Imported from \`effect-failclosed/${m.name}\` (a sub-path export).`, "")
  if (m.description !== "") out.push(links(m.description), "")
  if (m.since !== undefined) out.push(`Added in v${m.since}`, "")
  if (m.reexports.length > 0) {
    out.push("## Exports", "")
    for (const r of m.reexports) {
      const target = r.from.replace(/^\.\//, "").replace(/\.js$/, "")
      out.push(`- \`${r.names}\` from [${target}](./${target}.md)`)
    }
    out.push("")
  }
  const byCategory = new Map<string, Array<ExportDoc>>()
  for (const e of m.exports) {
    const c = e.category ?? "utils"
    byCategory.set(c, [...(byCategory.get(c) ?? []), e])
  }
  const categories = [...byCategory.keys()].sort()
  if (categories.length > 0) {
    out.push("## Contents", "")
    for (const c of categories) {
      out.push(`- ${c}`)
      for (const e of byCategory.get(c)!) out.push(`  - [${e.name}](#${anchor(e.name)})`)
    }
    out.push("")
  }
  for (const c of categories) {
    out.push(`## ${c}`, "")
    for (const e of byCategory.get(c)!) {
      out.push(`### ${e.name}`, "")
      if (e.deprecated !== undefined) out.push(`**Deprecated**: ${e.deprecated}`, "")
      if (e.description !== "") out.push(links(e.description), "")
      out.push("**Signature**", "", "```ts", e.signature, "```", "")
      for (const example of e.examples) out.push("**Example**", "", example, "")
      out.push(`Added in v${e.since ?? "?"} · [source](../../${e.location.replace(/:(\d+)$/, "#L$1")})`, "")
    }
  }
  return out.join("\n")
}

const renderIndex = (modules: ReadonlyArray<ModuleDoc>): string => {
  const out = ["# API reference", "", "Generated by `npm run docs` from the JSDoc of `src/`.", ""]
  const sub = subPaths()
  for (const m of modules) {
    const first = m.description.split("\n\n")[0]?.replace(/\n/g, " ") ?? ""
    const title =
      m.name === "index" ? "effect-failclosed (package root)" : sub.has(m.name) ? `effect-failclosed/${m.name}` : m.name
    out.push(`- [${title}](./${m.name}.md): ${first}`)
  }
  return out.join("\n") + "\n"
}

/** writes docs/api/ and returns the paths written */
export const generate = (modules: ReadonlyArray<ModuleDoc>, dir = join(root, "docs", "api")): Array<string> => {
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  const written = [join(dir, "README.md")]
  writeFileSync(written[0]!, renderIndex(modules))
  for (const m of modules) {
    const path = join(dir, `${m.name}.md`)
    writeFileSync(path, renderModule(m))
    written.push(path)
  }
  return written
}

const main = () => {
  const modules = collect()
  const found = problems(modules)
  if (process.argv.includes("--check")) {
    for (const p of found) console.error(p)
    console.log(`${found.length} export(s) with incomplete JSDoc`)
    process.exit(found.length === 0 ? 0 : 1)
  }
  const written = generate(modules)
  const exports = modules.reduce((n, m) => n + m.exports.length, 0)
  console.log(`docs/api: ${written.length} pages, ${modules.length} modules, ${exports} exports`)
  if (found.length > 0) {
    console.warn(`${found.length} export(s) with incomplete JSDoc (npm run docs -- --check lists them)`)
  }
  console.log(`open ${relative(process.cwd(), written[0]!)}`)
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main()
