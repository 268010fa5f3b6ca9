/**
 * docs/architecture.md cannot drift: its file map, lines per floor and hops of one get are generated from the tree
 * (`npm run architecture`), and this test generates them again and compares.
 */
import { describe, expect, it } from "vitest"
import { generate, readDoc, render } from "../scripts/architecture.js"

describe("docs/architecture.md", () => {
  it("holds what `npm run architecture` generates from the tree now", async () => {
    const doc = readDoc()
    const sections = await generate()
    // the generated sections are there and not empty: the comparison below is not vacuous
    for (const name of ["files", "floors", "hops"]) {
      expect(doc, `section ${name}`).toContain(`<!-- generated:${name} -->`)
      expect(sections[name]!.length).toBeGreaterThan(100)
    }
    expect(render(doc, sections), "docs/architecture.md is out of date: run `npm run architecture`").toBe(doc)
  }, 60_000)
})
