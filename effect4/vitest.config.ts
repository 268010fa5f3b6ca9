import { defineConfig } from "vitest/config"

export default defineConfig({
  // "@effect-failclosed/core" and "effect-failclosed-effect4" resolve to their src/ (the "source" export condition)
  resolve: { conditions: ["source"] },
  ssr: { resolve: { conditions: ["source"] } },
  test: {
    include: ["test/**/*.test.ts"],
    // the orphan check of the Effect 3 package's harness (plain TypeScript): the same servers, the same rules
    globalSetup: ["../test/support/globalSetup.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    teardownTimeout: 30_000,
    watch: false,
    pool: "forks",
    maxWorkers: 2
  }
})
