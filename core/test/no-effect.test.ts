/**
 * The core has no Effect inside: no source file imports `effect` or `@effect/*`, and its package declares no such
 * dependency. This is what lets both Effect lines (3 and 4) sit on one core.
 */
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"

const core = fileURLToPath(new URL("..", import.meta.url))

const sourceFiles = (dir: string): Array<string> =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sourceFiles(join(dir, entry.name)) : entry.name.endsWith(".ts") ? [join(dir, entry.name)] : []
  )

/** an import, export … from, or dynamic import of `effect` or an `@effect/` package */
const EFFECT_IMPORT = /(?:from\s*|import\s*\(?\s*)["'](?:effect(?:\/[^"']*)?|@effect\/[^"']+)["']/

describe("core without Effect", () => {
  it("no source or test file of the core imports effect or @effect/*", () => {
    const self = fileURLToPath(import.meta.url)
    // this file is left out: it holds Effect imports as strings, to show the rule catches them
    const files = [...sourceFiles(join(core, "src")), ...sourceFiles(join(core, "test"))].filter((f) => f !== self)
    expect(files.length).toBeGreaterThan(1)
    const offenders = files.filter((file) => EFFECT_IMPORT.test(readFileSync(file, "utf8")))
    expect(offenders).toEqual([])
  })

  it("the rule catches an Effect import (the check is not vacuous)", () => {
    expect(EFFECT_IMPORT.test(`import * as Effect from "effect/Effect"`)).toBe(true)
    expect(EFFECT_IMPORT.test(`import { Effect } from "effect"`)).toBe(true)
    expect(EFFECT_IMPORT.test(`export * from "@effect/platform"`)).toBe(true)
    expect(EFFECT_IMPORT.test(`const m = await import("effect")`)).toBe(true)
    expect(EFFECT_IMPORT.test(`import { x } from "effect-failclosed"`)).toBe(false)
  })

  it("the core's package.json declares no effect dependency of any kind", () => {
    const pkg = JSON.parse(readFileSync(join(core, "package.json"), "utf8")) as Record<string, unknown>
    const names = ["dependencies", "peerDependencies", "optionalDependencies", "devDependencies"].flatMap((field) =>
      Object.keys((pkg[field] as Record<string, string> | undefined) ?? {})
    )
    expect(names.filter((name) => name === "effect" || name.startsWith("@effect/"))).toEqual([])
  })
})
