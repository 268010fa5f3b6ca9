import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/support/globalSetup.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    teardownTimeout: 30_000,
    watch: false,
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
