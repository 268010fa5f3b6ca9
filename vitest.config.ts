import { defineConfig } from "vitest/config"

export default defineConfig({
  // "effect-failclosed" resolves to src/ (the "source" export condition), so examples and tests
  // import the package by its public name without a build
  resolve: { conditions: ["source"] },
  ssr: { resolve: { conditions: ["source"] } },
  test: {
    include: ["test/**/*.test.ts", "core/test/**/*.test.ts"],
    globalSetup: ["test/support/globalSetup.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    teardownTimeout: 30_000,
    watch: false,
    // it.concurrent tests (the docs examples: each a tsx process of its own) run two at a time: five at once on a
    // 2-core machine, beside another test file, pushed single 2.5 s runs past their 30 s timeout
    maxConcurrency: 2,
    // one process per test file: a crashing file cannot take others down, and its redis-servers die with it
    pool: "forks",
    poolOptions: {
      forks: {
        minForks: 1,
        maxForks: 2
      }
    }
  }
})
