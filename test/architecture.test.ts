/**
 * docs/architecture.md cannot drift: its file map, lines per floor and hops of one get are generated from the tree
 * (`npm run architecture`), and this test runs the same command with `--check`, which fails when the committed file
 * differs. (A child process, as `npm run architecture` runs it: function names on a stack depend on the transform
 * that loaded the code, and vitest's differs from tsx's.)
 */
import { execFile } from "node:child_process"
import { promisify } from "node:util"
import { describe, expect, it } from "vitest"
import { readDoc } from "../scripts/architecture.js"

const run = promisify(execFile)

describe("docs/architecture.md", () => {
  it("holds what `npm run architecture` generates from the tree now", async () => {
    const doc = readDoc()
    // the generated sections are there and not empty: the check below is not vacuous
    for (const name of ["files", "floors", "hops"]) {
      const section = new RegExp(`<!-- generated:${name} -->\\n\\n([\\s\\S]+?)\\n\\n<!-- /generated:${name} -->`)
      expect(section.exec(doc)?.[1]?.length ?? 0, `section ${name}`).toBeGreaterThan(100)
    }
    const outcome = await run("npx", ["tsx", "--conditions=source", "scripts/architecture.ts", "--check"], {
      timeout: 90_000
    }).then(
      () => "up to date",
      (error: { stderr?: string }) => error.stderr ?? String(error)
    )
    expect(outcome, "docs/architecture.md is out of date: run `npm run architecture`").toBe("up to date")
  }, 120_000)
})
