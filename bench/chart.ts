/**
 * `tsx bench/chart.ts <bench.json> [out.svg]`: renders the ratio table of a bench run written with
 * `BENCH_JSON=<bench.json> npm run bench` as a bar chart (default: docs/img/performance.svg).
 */
import { readFileSync } from "node:fs"
import { writePerformanceChart } from "./charts.js"
import type { Result } from "./harness.js"

const [input, output = "docs/img/performance.svg"] = process.argv.slice(2)
if (input === undefined) {
  console.error("usage: tsx bench/chart.ts <bench.json> [out.svg]")
  process.exit(2)
}
const { results } = JSON.parse(readFileSync(input, "utf8")) as { readonly results: ReadonlyArray<Result> }
await writePerformanceChart(results, output)
console.error(`chart: ${results.length} case(s) → ${output}`)
