/**
 * The pictures of the long runs, rendered as SVG by Vega-Lite (compiled to a Vega view and rendered
 * headless: no browser, no canvas, no network). `timelineSvg` draws what a fault did to the traffic
 * (`npm run chaos`, `npm run failover`); `ratioBarsSvg` draws the ratio table of `npm run bench`.
 */
import { mkdirSync, writeFileSync } from "node:fs"
import { dirname } from "node:path"
import * as vega from "vega"
import type { TopLevelSpec } from "vega-lite"
import { compile } from "vega-lite"
import type { Result } from "./harness.js"

// ---------------------------------------------------------------------------------------------------------------------
// timeline
// ---------------------------------------------------------------------------------------------------------------------

/** Operations settled per bucket (by the moment they settled), from the start of the load. */
export interface Buckets {
  readonly millis: number
  /** succeeded, served by Redis */
  readonly ok: ReadonlyArray<number>
  /** succeeded from the node-local fallback, marked degraded */
  readonly degraded: ReadonlyArray<number>
  /** failed with CacheBackendUnavailable */
  readonly unavailable: ReadonlyArray<number>
  /** failed otherwise or died (expected to stay empty) */
  readonly other: ReadonlyArray<number>
}

export interface Marker {
  /** milliseconds from the start of the load */
  readonly at: number
  readonly label: string
}

export interface Timeline {
  readonly title: string
  /** one string a line */
  readonly subtitle?: ReadonlyArray<string> | undefined
  /** one stacked chart per panel, one above the other, on the same time axis */
  readonly panels: ReadonlyArray<{ readonly label?: string | undefined; readonly buckets: Buckets }>
  readonly markers: ReadonlyArray<Marker>
}

const OUTCOMES = [
  ["ok", "ok (served by Redis)", "#59a14f"],
  ["degraded", "degraded (local fallback, marked)", "#f1a33a"],
  ["unavailable", "failed: CacheBackendUnavailable", "#e15759"],
  ["other", "failed otherwise", "#7b4ea3"]
] as const

/** the colours of the markers, in the order they are given (fault, back, recovered, …) */
const MARKER_COLORS = ["#222222", "#2f6db5", "#1e7b34", "#8c564b", "#9467bd"]

/** Counts `items` into buckets of `millis` by their end, from `start` to `end` (a last, partial bucket is left out). */
export const bucketize = <A>(
  items: Iterable<A>,
  options: {
    readonly start: number
    readonly end: number
    readonly millis?: number
    readonly endOf: (a: A) => number
    readonly outcomeOf: (a: A) => keyof Omit<Buckets, "millis">
  }
): Buckets => {
  const millis = options.millis ?? 100
  const n = Math.max(1, Math.floor((options.end - options.start) / millis))
  const zeros = () => new Array<number>(n).fill(0)
  const counts = { ok: zeros(), degraded: zeros(), unavailable: zeros(), other: zeros() }
  for (const item of items) {
    const i = Math.floor((options.endOf(item) - options.start) / millis)
    const series = counts[options.outcomeOf(item)]
    if (i >= 0 && i < n) series[i] = series[i]! + 1
  }
  return { millis, ...counts }
}

const seconds = (millis: number) => millis / 1000

/** An SVG of operations per bucket, stacked by outcome, with a dashed vertical line at each marker. */
export const timelineSvg = (timeline: Timeline): Promise<string> => {
  // the outcomes that occur (ok always), so that a strict run shows no "degraded" and a degraded run no failures
  const present = OUTCOMES.filter(
    ([key]) => key === "ok" || timeline.panels.some((p) => p.buckets[key].some((c) => c > 0))
  )
  const millis = timeline.panels[0]?.buckets.millis ?? 100
  const domainEnd = seconds(Math.max(...timeline.panels.map((p) => p.buckets.ok.length)) * millis)
  const markers = timeline.markers.map((m, i) => ({ at: seconds(m.at), label: m.label, row: i }))
  const markerColor = {
    field: "label",
    type: "nominal",
    scale: { domain: markers.map((m) => m.label), range: MARKER_COLORS },
    legend: null
  } as const
  // stacked here rather than by Vega-Lite (which does not stack ranged bars): y0..y1 per bucket and outcome
  const stacked = (buckets: Buckets) =>
    buckets.ok.flatMap((_, b) => {
      let y0 = 0
      return present.flatMap(([key, outcome]) => {
        const count = buckets[key][b] ?? 0
        if (count === 0) return []
        const row = { from: seconds(b * millis), to: seconds((b + 1) * millis), outcome, count, y0, y1: y0 + count }
        y0 += count
        return [row]
      })
    })
  const panel = (p: Timeline["panels"][number], i: number) => ({
    width: 720,
    height: 180,
    ...(p.label === undefined ? {} : { title: { text: p.label, anchor: "start", fontSize: 12 } }),
    layer: [
      {
        data: { values: stacked(p.buckets) },
        mark: { type: "rect" },
        encoding: {
          x: {
            field: "from",
            type: "quantitative",
            scale: { domain: [0, domainEnd], nice: false },
            axis: { title: i === timeline.panels.length - 1 ? "time since the load started (s)" : null }
          },
          x2: { field: "to" },
          y: { field: "y1", type: "quantitative", title: `operations per ${millis} ms` },
          y2: { field: "y0" },
          color: {
            field: "outcome",
            type: "nominal",
            scale: { domain: present.map(([, label]) => label), range: present.map(([, , color]) => color) },
            legend: i === 0 ? { title: null, orient: "top", direction: "horizontal", labelLimit: 0 } : null
          }
        }
      },
      {
        data: { values: markers },
        mark: { type: "rule", strokeDash: [5, 3], strokeWidth: 1.5 },
        encoding: { x: { field: "at", type: "quantitative" }, color: markerColor }
      },
      ...(i === 0
        ? [
            {
              data: { values: markers },
              mark: { type: "text", align: "left", baseline: "top", dx: 4, fontSize: 11, fontWeight: "bold" },
              encoding: {
                x: { field: "at", type: "quantitative" },
                y: { field: "row", type: "quantitative", scale: { domain: [0, 12], range: [2, 180] }, axis: null },
                text: { field: "label", type: "nominal" },
                color: markerColor
              }
            }
          ]
        : [])
    ],
    resolve: { scale: { color: "independent", y: "independent" } }
  })
  const spec = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: timeline.title,
      ...(timeline.subtitle === undefined ? {} : { subtitle: [...timeline.subtitle] }),
      anchor: "start"
    },
    background: "white",
    padding: 12,
    vconcat: timeline.panels.map(panel)
  } as TopLevelSpec
  return render(spec)
}

// ---------------------------------------------------------------------------------------------------------------------
// ratio bars
// ---------------------------------------------------------------------------------------------------------------------

const RAW = "baseline with a target"
const PEER = "other baseline"

/**
 * An SVG of the bench's ratio table: one bar per case and baseline, library ops/s ÷ baseline ops/s
 * on a log scale, starting at 1× (as fast), with the case's target as a tick.
 */
export const ratioBarsSvg = (results: ReadonlyArray<Result>): Promise<string> => {
  const rows = results.flatMap((r) =>
    r.baselines.map((b) => ({
      group: r.group,
      row: `${r.name} vs ${b.label}`,
      role: b.target !== undefined ? RAW : PEER,
      ratio: b.ratio,
      target: b.target?.ratio,
      label: `${b.ratio < 0.1 ? b.ratio.toFixed(3) : b.ratio.toFixed(2)}×`
    }))
  )
  const extremes = rows.flatMap((r) => [r.ratio, r.target ?? 1]).filter((x) => x > 0)
  const domain = [
    10 ** Math.floor(Math.log10(Math.min(0.5, ...extremes))),
    10 ** Math.ceil(Math.log10(Math.max(2, ...extremes)))
  ] as const
  // a label goes beyond the bar's end, or inside the bar when that end is near the left edge
  const labelled = rows.map((r) => ({ ...r, side: r.ratio >= 1 || r.ratio < domain[0] * 5 ? "right" : "left" }))
  const groups = [...new Set(rows.map((r) => r.group))]
  const y = { field: "row", type: "nominal", sort: null, title: null } as const
  const label = (side: "left" | "right") => ({
    transform: [{ filter: `datum.side === '${side}'` }],
    mark: { type: "text", align: side === "right" ? "left" : "right", dx: side === "right" ? 3 : -3, fontSize: 10 },
    encoding: { y, x: { field: "ratio", type: "quantitative" }, text: { field: "label" } }
  })
  const spec = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: "effect-failclosed vs baselines: library ops/s ÷ baseline ops/s",
      subtitle:
        "medians of interleaved rounds in one run; bars start at 1× (as fast): right of it the library is faster",
      anchor: "start"
    },
    background: "white",
    padding: 12,
    vconcat: groups.map((group, i) => ({
      data: { values: labelled.filter((r) => r.group === group) },
      title: { text: group, anchor: "start", fontSize: 12 },
      width: 480,
      height: { step: 16 },
      layer: [
        {
          mark: { type: "bar", height: { band: 0.75 } },
          encoding: {
            y: { ...y, axis: { labelLimit: 0 } },
            x: {
              field: "ratio",
              type: "quantitative",
              scale: { type: "log", domain },
              title: i === groups.length - 1 ? "library ÷ baseline (log scale)" : null
            },
            x2: { datum: 1 },
            color: {
              field: "role",
              type: "nominal",
              scale: { domain: [RAW, PEER], range: ["#4e79a7", "#bab0ac"] },
              legend: i === 0 ? { title: null, orient: "top", direction: "horizontal", labelLimit: 0 } : null
            }
          }
        },
        label("right"),
        label("left"),
        {
          transform: [{ filter: "isValid(datum.target)" }],
          mark: { type: "tick", color: "#111", thickness: 2, bandSize: 14 },
          encoding: { y, x: { field: "target", type: "quantitative" } }
        },
        { mark: { type: "rule", strokeDash: [4, 3], color: "#333" }, encoding: { x: { datum: 1 } } }
      ]
    })),
    resolve: { scale: { color: "shared" } }
  } as TopLevelSpec
  return render(spec)
}

// ---------------------------------------------------------------------------------------------------------------------
// files
// ---------------------------------------------------------------------------------------------------------------------

const render = async (spec: TopLevelSpec): Promise<string> => {
  // the compilers' warnings (view-size heuristics) go to console.warn: only errors matter here
  const logger = vega.logger(vega.Error)
  const view = new vega.View(vega.parse(compile(spec, { logger }).spec), { renderer: "none", logger })
  try {
    return await view.toSVG()
  } finally {
    view.finalize()
  }
}

/** Writes `svg` to `path`, creating its directory. */
export const writeSvg = (path: string, svg: string): void => {
  mkdirSync(dirname(path), { recursive: true })
  writeFileSync(path, svg.endsWith("\n") ? svg : `${svg}\n`)
}

/** Renders the bench's ratio table to `path` (for `npm run bench`: docs/img/performance.svg). */
export const writePerformanceChart = async (results: ReadonlyArray<Result>, path: string): Promise<void> =>
  writeSvg(path, await ratioBarsSvg(results))
