/**
 * The seeded run settings of the core's property tests (the same variables as the Effect package's:
 * `FC_SEED` reproduces a run, `FC_RUNS` raises the number of runs).
 */
import { beforeAll } from "vitest"

export const seeded = (file: string) => {
  const seed = Number(process.env["FC_SEED"] ?? 20_261_125)
  const numRuns = Math.max(1_000, Number(process.env["FC_RUNS"] ?? 1_000))
  beforeAll(() => {
    console.info(`[property] core/${file}: seed ${seed}, ${numRuns} runs per property (reproduce with FC_SEED=${seed})`)
  })
  return { seed, numRuns }
}
