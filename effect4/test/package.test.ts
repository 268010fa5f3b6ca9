/**
 * Pack and consume, as the README says: builds this package, packs the tarball npm would publish (the core bundled),
 * and installs it into a fresh project outside the repository with `npm install effect@latest <tarball>` — offline:
 * effect 4 and ioredis are linked from this repository's node_modules, nothing is downloaded. A consumer program
 * type-checks against the packed declarations and runs on Node 24, on LocalOnly and on StrictDistributed against a
 * real redis-server.
 */
import { execFile } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { redisServer } from "./support/redis.js"

const exec = promisify(execFile)
const here = fileURLToPath(new URL("..", import.meta.url))
const root = join(here, "..")
const node24 = join(here, "node_modules", ".bin", "node")
const ENV = { ...process.env, npm_config_update_notifier: "false", npm_config_fund: "false", npm_config_audit: "false" }

const CONSUMER = `import { Effect, Layer, Option, Schema } from "effect"
import {
  type CacheBackendUnavailable,
  DistributedCache,
  Keyspace,
  LocalOnly,
  RateLimiter,
  RedisClient,
  StrictDistributed
} from "effect-failclosed-effect4"

const local: Layer.Layer<DistributedCache> = LocalOnly
const strict: Layer.Layer<DistributedCache, CacheBackendUnavailable, RedisClient> = StrictDistributed

const Profiles = Keyspace.make({
  name: "profiles",
  key: Schema.Struct({ id: Schema.Number }),
  value: Schema.Struct({ name: Schema.String }),
  timeToLive: "1 minute"
})
const Login = RateLimiter.make({ name: "login", limit: 5, window: "1 minute", algorithm: "fixed-window" })

const program = Effect.gen(function* () {
  yield* Profiles.set({ id: 1 }, { name: "Ada" })
  const cached = yield* Profiles.get({ id: 1 })
  const decision = yield* Login.consume("ada")
  const stats = yield* DistributedCache.use((cache) => cache.stats)
  return {
    resolved: import.meta.resolve("effect-failclosed-effect4"),
    name: Option.getOrNull(Option.map(cached, (c) => c.value.name)),
    backend: Option.getOrNull(Option.map(cached, (c) => c.backend)),
    remaining: decision.remaining,
    mode: stats.mode
  }
})

const cache = process.argv[2] === "strict" ? strict.pipe(Layer.provide(RedisClient.layerConfig())) : local
Effect.runPromise(program.pipe(Effect.provide(cache))).then((result) => console.log(JSON.stringify(result)))
`

const TSCONFIG = {
  compilerOptions: {
    target: "ES2022",
    module: "NodeNext",
    moduleResolution: "NodeNext",
    lib: ["ES2022", "DOM"],
    types: ["node"],
    strict: true,
    exactOptionalPropertyTypes: true,
    verbatimModuleSyntax: true,
    skipLibCheck: true,
    outDir: "out",
    rootDir: "src"
  },
  include: ["src"]
}

let dir = ""
let project = ""
let files: Array<string> = []

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "effect-failclosed-effect4-pack-"))
  project = join(dir, "consumer")
  rmSync(join(here, "dist"), { recursive: true, force: true })
  await exec("npm", ["run", "build"], { cwd: here, env: ENV })
  const { stdout } = await exec("npm", ["pack", "--json", "--pack-destination", dir], { cwd: here, env: ENV })
  const [info] = JSON.parse(stdout.slice(stdout.indexOf("["))) as Array<{
    filename: string
    files: Array<{ path: string }>
  }>
  files = info!.files.map((f) => f.path)
  mkdirSync(join(project, "src"), { recursive: true })
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }))
  writeFileSync(join(project, "tsconfig.json"), JSON.stringify(TSCONFIG, null, 2))
  writeFileSync(join(project, "src", "main.ts"), CONSUMER)
  // `npm install effect@latest effect-failclosed-effect4`, offline: effect 4 from this package's node_modules
  const links = [
    join(here, "node_modules", "effect"),
    join(root, "node_modules", "ioredis"),
    join(here, "node_modules", "@types", "node")
  ]
  await exec(
    "npm",
    ["install", "--offline", "--ignore-scripts", "--no-package-lock", join(dir, info!.filename), ...links],
    {
      cwd: project,
      env: ENV
    }
  )
  await exec(join(root, "node_modules", ".bin", "tsc"), ["-p", join(project, "tsconfig.json")], {
    cwd: project,
    env: ENV
  }).catch((e) => {
    throw new Error(`the consumer program does not type-check against the packed declarations:\n${e.stdout}${e.stderr}`)
  })
}, 120_000)

afterAll(() => {
  if (dir !== "") rmSync(dir, { recursive: true, force: true })
})

describe("the packed Effect 4 tarball", () => {
  it("holds the built ESM, the declarations, the README and the core, and no test", () => {
    for (const f of ["dist/index.js", "dist/index.d.ts", "README.md", "package.json"]) assert.include(files, f)
    assert.include(files, "node_modules/@effect-failclosed/core/dist/index.js")
    assert.include(files, "node_modules/@effect-failclosed/core/package.json")
    assert.deepStrictEqual(
      files.filter((f) => f.endsWith(".test.ts") || f.startsWith("test/") || f.startsWith("scripts/")),
      []
    )
    // the copy made for packing is gone again
    assert.isFalse(existsSync(join(here, "node_modules", "@effect-failclosed", "core")))
  })

  it("declares effect 4 as a peer and is one copy of effect with its consumer", () => {
    const manifest = JSON.parse(
      readFileSync(join(project, "node_modules", "effect-failclosed-effect4", "package.json"), "utf8")
    )
    assert.deepStrictEqual(Object.keys(manifest.peerDependencies), ["effect"])
    assert.match(manifest.peerDependencies.effect, /^\^4\./)
    assert.isFalse(existsSync(join(project, "node_modules", "effect-failclosed-effect4", "node_modules", "effect")))
  })

  it("type-checks a consumer program against the declarations and runs it on LocalOnly (Node 24)", async () => {
    const { stdout } = await exec(node24, [join(project, "out", "main.js"), "local"], { cwd: project, env: ENV })
    assert.deepStrictEqual(JSON.parse(stdout), {
      resolved: JSON.parse(stdout).resolved,
      name: "Ada",
      backend: "local",
      remaining: 4,
      mode: "LocalOnly"
    })
    assert.match(JSON.parse(stdout).resolved, /\/node_modules\/effect-failclosed-effect4\/dist\/index\.js$/)
  })

  it.live("runs the consumer program on StrictDistributed against a real redis-server", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const { stdout } = yield* Effect.promise(() =>
        exec(node24, [join(project, "out", "main.js"), "strict"], {
          cwd: project,
          env: { ...ENV, REDIS_URL: redis.url },
          timeout: 20_000
        })
      )
      assert.deepStrictEqual(
        { ...JSON.parse(stdout), resolved: undefined },
        { resolved: undefined, name: "Ada", backend: "redis", remaining: 4, mode: "StrictDistributed" }
      )
    }).pipe(Effect.scoped)
  )
})
