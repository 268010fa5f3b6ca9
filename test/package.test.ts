/**
 * Pack and consume: builds the package, packs the tarball npm would publish, installs it into a
 * fresh project outside the repository (with effect, @effect/platform and ioredis linked from this
 * repository's node_modules, so nothing is downloaded), type-checks a small consumer program with
 * the repository's tsc and runs it with node. Catches files missing from the tarball, a broken
 * exports map, declarations that do not type-check for a consumer, and a package that only works
 * through the in-repo "source" condition.
 */
import { execFile } from "node:child_process"
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync
} from "node:fs"
import { tmpdir } from "node:os"
import { join, posix } from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { redisServer } from "./support/RedisServer.js"

const exec = promisify(execFile)
const root = fileURLToPath(new URL("..", import.meta.url))
const bin = (name: string) => join(root, "node_modules", ".bin", name)
const ENV = { ...process.env, npm_config_update_notifier: "false", npm_config_fund: "false", npm_config_audit: "false" }

const CONSUMER = `import { KeyValueStore } from "@effect/platform"
import { Effect, Layer, Option, Schema } from "effect"
import {
  type CacheBackendUnavailable,
  DistributedCache,
  Keyspace,
  LocalOnly,
  RedisClient,
  StrictDistributed
} from "effect-failclosed"
// a sub-path module beside Effect's module of the same name
import * as FailClosedKeyValueStore from "effect-failclosed/KeyValueStore"

// the contract is in the types: LocalOnly needs nothing, StrictDistributed may fail at startup
const local: Layer.Layer<DistributedCache> = LocalOnly
const strict: Layer.Layer<DistributedCache, CacheBackendUnavailable, RedisClient> = StrictDistributed

const Profiles = Keyspace.make({
  name: "profiles",
  key: Schema.Struct({ id: Schema.Number }),
  value: Schema.Struct({ name: Schema.String }),
  timeToLive: "1 minute"
})

const program = Effect.gen(function* () {
  yield* Profiles.set({ id: 1 }, { name: "Ada" })
  const cached = yield* Profiles.get({ id: 1 })
  const kv = yield* KeyValueStore.KeyValueStore
  yield* kv.set("greeting", "hello")
  const stats = yield* Effect.flatMap(DistributedCache, (cache) => cache.stats)
  return {
    resolved: import.meta.resolve("effect-failclosed"),
    resolvedSubpath: import.meta.resolve("effect-failclosed/KeyValueStore"),
    name: Option.map(cached, (c) => c.value.name).pipe(Option.getOrNull),
    backend: Option.map(cached, (c) => c.backend).pipe(Option.getOrNull),
    greeting: Option.getOrNull(yield* kv.get("greeting")),
    mode: stats.mode
  }
})

const cache = process.argv[2] === "strict" ? strict.pipe(Layer.provide(RedisClient.layerConfig())) : local
const live = FailClosedKeyValueStore.layer({ name: "consumer" }).pipe(Layer.provideMerge(cache))

Effect.runPromise(program.pipe(Effect.provide(live))).then((result) => console.log(JSON.stringify(result)))
`

/** a consumer of the @effect/experimental adapters, through their sub-path exports only */
const EXPERIMENTAL_CONSUMER = `import * as PersistedCache from "@effect/experimental/PersistedCache"
import * as ExperimentalRateLimiter from "@effect/experimental/RateLimiter"
import { Effect, Layer, PrimaryKey, Schema } from "effect"
import { LocalOnly, RedisClient, StrictDistributed } from "effect-failclosed"
import * as FailClosedPersistence from "effect-failclosed/Persistence"
import * as RateLimiterStore from "effect-failclosed/RateLimiterStore"

class GetUser extends Schema.TaggedRequest<GetUser>()("GetUser", {
  failure: Schema.String,
  success: Schema.Struct({ name: Schema.String }),
  payload: { id: Schema.Number }
}) {
  [PrimaryKey.symbol]() {
    return \`user:\${this.id}\`
  }
}

let lookups = 0
const program = Effect.gen(function* () {
  const users = yield* PersistedCache.make({
    storeId: "users",
    lookup: (request: GetUser) => Effect.sync(() => ({ name: \`user \${request.id}\`, n: ++lookups })),
    timeToLive: () => "1 minute",
    inMemoryTTL: 0
  })
  yield* users.get(new GetUser({ id: 1 }))
  const user = yield* users.get(new GetUser({ id: 1 }))
  const limiter = yield* ExperimentalRateLimiter.RateLimiter
  const decision = yield* limiter.consume({ key: "login:ada", limit: 5, window: "1 minute" })
  return {
    persistence: import.meta.resolve("effect-failclosed/Persistence"),
    rateLimiterStore: import.meta.resolve("effect-failclosed/RateLimiterStore"),
    name: user.name,
    lookups,
    remaining: decision.remaining
  }
})

const cache = process.argv[2] === "strict" ? StrictDistributed.pipe(Layer.provide(RedisClient.layerConfig())) : LocalOnly
const live = Layer.mergeAll(
  FailClosedPersistence.layerResult(),
  ExperimentalRateLimiter.layer.pipe(Layer.provide(RateLimiterStore.layer()))
).pipe(Layer.provide(cache))

Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(live))).then((result) => console.log(JSON.stringify(result)))
`

const TSCONFIG = {
  compilerOptions: {
    target: "ES2022",
    module: "NodeNext",
    moduleResolution: "NodeNext",
    lib: ["ES2022"],
    types: ["node"],
    strict: true,
    exactOptionalPropertyTypes: true,
    noUncheckedIndexedAccess: true,
    verbatimModuleSyntax: true,
    // as most consumers have it; checking every .d.ts of effect would cost seconds here, and a
    // declaration of ours that does not resolve already fails the build (declaration emit)
    skipLibCheck: true,
    outDir: "out",
    rootDir: "src"
  },
  include: ["src"]
}

let dir = ""
/** a consumer of the package root, without @effect/experimental */
let project = ""
/** a consumer of the sub-path exports, with @effect/experimental */
let experimentalProject = ""
let tarball = ""

const nm = (name: string) => join(root, "node_modules", name)

/**
 * A fresh project in `at` that installs the tarball, effect, @effect/platform, ioredis and `extra` (linked from this
 * repository's node_modules: nothing is downloaded) and type-checks `program` against the packed declarations.
 */
const installConsumer = async (at: string, program: string, extra: ReadonlyArray<string>) => {
  mkdirSync(join(at, "src"), { recursive: true })
  writeFileSync(join(at, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }))
  writeFileSync(join(at, "tsconfig.json"), JSON.stringify(TSCONFIG, null, 2))
  writeFileSync(join(at, "src", "main.ts"), program)
  const packages = ["effect", "@effect/platform", "ioredis", "@types/node", ...extra].map(nm)
  await exec("npm", ["install", "--offline", "--ignore-scripts", "--no-package-lock", tarball, ...packages], {
    cwd: at,
    env: ENV
  })
  await exec(bin("tsc"), ["-p", join(at, "tsconfig.json")], { cwd: at, env: ENV }).catch((e) => {
    throw new Error(`the consumer program does not type-check against the packed declarations:\n${e.stdout}${e.stderr}`)
  })
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "effect-failclosed-pack-"))
  project = join(dir, "consumer")
  experimentalProject = join(dir, "consumer-experimental")
  // a clean build: stale files in dist/ would hide a missing one
  rmSync(join(root, "dist"), { recursive: true, force: true })
  await exec("npm", ["run", "build"], { cwd: root, env: ENV })
}, 60_000)

afterAll(() => {
  if (dir !== "") rmSync(dir, { recursive: true, force: true })
})

describe("the packed tarball", () => {
  let files: Array<string> = []

  beforeAll(async () => {
    const { stdout } = await exec("npm", ["pack", "--json", "--pack-destination", dir], { cwd: root, env: ENV })
    const [info] = JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>
    tarball = join(dir, info!.filename)
    files = info!.files.map((f) => f.path)

    await Promise.all([
      installConsumer(project, CONSUMER, []),
      installConsumer(experimentalProject, EXPERIMENTAL_CONSUMER, ["@effect/experimental"])
    ])
  }, 60_000)

  it("holds the built ESM, the declarations, the sources they map to, the README, the changelog, the guides and the examples, and nothing else", () => {
    for (const f of ["dist/index.js", "dist/index.d.ts", "dist/KeyValueStore.js", "dist/KeyValueStore.d.ts"]) {
      expect(files).toContain(f)
    }
    expect(files).toContain("src/index.ts")
    // the operator's command (package.json "bin")
    expect(files).toContain("dist/cli/main.js")
    expect(files).toContain("README.md")
    expect(files).toContain("package.json")
    // the Effect-free core ships inside the tarball (bundleDependencies): one package to install, one version
    expect(files).toContain("node_modules/@effect-failclosed/core/dist/index.js")
    expect(files).toContain("node_modules/@effect-failclosed/core/dist/index.d.ts")
    expect(files).toContain("node_modules/@effect-failclosed/core/package.json")
    const unexpected = files.filter(
      (f) =>
        !/^(dist|src)\//.test(f) &&
        !/^node_modules\/@effect-failclosed\/core\/(dist\/.+|src\/.+\.ts|package\.json)$/.test(f) &&
        !/^docs\/[^/]+\.md$/.test(f) &&
        !/^docs\/(?!api\/)(.+\/)?[^/]+\.(svg|png)$/.test(f) &&
        !/^examples\/[^/]+\.ts$/.test(f) &&
        !["README.md", "CHANGELOG.md", "package.json", "LICENSE"].includes(f)
    )
    expect(unexpected).toEqual([])
    expect(files.filter((f) => f.endsWith(".test.ts"))).toEqual([])
    // every module of src/ was built
    for (const f of files.filter((f) => /^src\/.*\.ts$/.test(f))) {
      const base = f.replace(/^src\//, "dist/").replace(/\.ts$/, "")
      expect(files).toContain(`${base}.js`)
      expect(files).toContain(`${base}.d.ts`)
    }
  })

  it("resolves every relative link of the README and of the shipped guides to a file in the tarball", () => {
    const shipped = files.filter((f) => f === "README.md" || f === "CHANGELOG.md" || /^docs\/[^/]+\.md$/.test(f))
    expect(shipped).toContain("docs/operations.md")
    let checked = 0
    for (const doc of shipped) {
      const text = readFileSync(join(root, doc), "utf8")
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^([a-z]+:|#)/i.test(target!)) continue
        const path = posix.normalize(posix.join(posix.dirname(doc), target!.replace(/#.*$/, "")))
        expect(files, `${doc} links to ${target}`).toContain(path)
        checked++
      }
    }
    // the README links the guides and the HTTP example
    expect(checked).toBeGreaterThan(10)
    expect(files).toContain("examples/http-server.ts")
  })

  it("cites repository files (tests, benchmarks, scripts) that exist, and links the repository where it does: they are not shipped", () => {
    const shipped = files.filter((f) => f === "README.md" || /^docs\/[^/]+\.md$/.test(f))
    const repository = "https://github.com/effect-failclosed/effect-failclosed"
    let cited = 0
    for (const doc of shipped) {
      const text = readFileSync(join(root, doc), "utf8")
      const paths = [...text.matchAll(/`((?:test|bench|scripts|core\/test)\/[^`\s]*)`/g)].map((m) => m[1]!)
      if (paths.length === 0) continue
      expect(text, `${doc} cites ${paths[0]} without a link to the repository`).toContain(`](${repository}`)
      for (const path of paths) {
        // not in the tarball: a reader follows the repository link
        expect(files, `${doc} cites ${path}`).not.toContain(path)
        const exists = path.includes("*")
          ? readdirSync(join(root, posix.dirname(path))).some((f) =>
              new RegExp(`^${posix.basename(path).replace(/[.]/g, "\\.").replace(/\*/g, ".*")}$`).test(f)
            )
          : existsSync(join(root, path))
        expect(exists, `${doc} cites ${path}, which is not in the repository`).toBe(true)
        cited++
      }
    }
    expect(cited).toBeGreaterThan(10)
  })

  it("maps the root and each public module to its source, declarations and ESM (sub-path exports)", () => {
    const manifest = JSON.parse(
      readFileSync(join(project, "node_modules", "effect-failclosed", "package.json"), "utf8")
    )
    const modules = readdirSync(join(root, "src"))
      .filter((f) => f.endsWith(".ts") && f !== "index.ts" && f !== "errors.ts")
      .map((f) => f.replace(/\.ts$/, ""))
    expect(modules).toEqual(expect.arrayContaining(["Keyspace", "RateLimiter", "HttpMiddleware", "KeyValueStore"]))
    for (const m of modules) {
      expect(manifest.exports[`./${m}`], m).toEqual({
        source: `./src/${m}.ts`,
        types: `./dist/${m}.d.ts`,
        // the entry checks the installed effect first (scripts/entryGuards.mjs), then loads dist/${m}.js
        import: `./dist/guard/${m}.js`
      })
      expect(files).toContain(`src/${m}.ts`)
      expect(files).toContain(`dist/${m}.d.ts`)
      expect(files).toContain(`dist/${m}.js`)
      expect(files).toContain(`dist/guard/${m}.js`)
    }
    expect(manifest.repository).toEqual({
      type: "git",
      url: "git+https://github.com/effect-failclosed/effect-failclosed.git"
    })
    expect(manifest.homepage).toMatch(/^https:\/\/github\.com\/effect-failclosed\/effect-failclosed/)
    expect(manifest.bugs.url).toMatch(/^https:\/\/github\.com\/effect-failclosed\/effect-failclosed\/issues$/)
  })

  it("declares an ESM-only exports map, no side effects, and effect and @effect/platform as peers", () => {
    const manifest = JSON.parse(
      readFileSync(join(project, "node_modules", "effect-failclosed", "package.json"), "utf8")
    )
    expect(manifest.type).toBe("module")
    expect(manifest.sideEffects).toBe(false)
    expect(Object.keys(manifest.exports["."])).toEqual(["source", "types", "import"])
    expect(manifest.exports["."].types).toBe("./dist/index.d.ts")
    expect(manifest.exports["."].import).toBe("./dist/guard/index.js")
    expect(Object.keys(manifest.peerDependencies).sort()).toEqual([
      "@effect/experimental",
      "@effect/platform",
      "effect"
    ])
    // only the sub-path exports need @effect/experimental: npm installs no optional peer
    expect(manifest.peerDependenciesMeta).toEqual({ "@effect/experimental": { optional: true } })
    for (const sub of ["./Persistence", "./RateLimiterStore"]) {
      expect(Object.keys(manifest.exports[sub])).toEqual(["source", "types", "import"])
      expect(manifest.exports[sub].import).toBe(`./dist/guard/${sub.slice(2)}.js`)
    }
    expect(manifest.dependencies).toEqual({ "@effect-failclosed/core": manifest.version, ioredis: expect.any(String) })
    expect(manifest.bundleDependencies).toEqual(["@effect-failclosed/core"])
    expect(manifest.dependencies.effect).toBeUndefined()
  })

  it("is ESM only, as the README's Install section says: a CommonJS project's require fails, its import() of the README runs", async () => {
    const readme = readFileSync(join(root, "README.md"), "utf8")
    const install = readme.slice(readme.indexOf("## Install"), readme.indexOf("## Try it"))
    expect(install).toContain("ERR_PACKAGE_PATH_NOT_EXPORTED")
    expect(install).toContain('"type": "module"')
    const block = /```js\n(\/\/ main\.cjs\n[\s\S]*?)```/.exec(install)?.[1]
    expect(block).toBeDefined()
    // a CommonJS project beside the consumer (npm init -y writes "type": "commonjs")
    const cjs = join(project, "cjs")
    mkdirSync(cjs, { recursive: true })
    writeFileSync(join(cjs, "package.json"), JSON.stringify({ name: "cjs-consumer", type: "commonjs" }))
    writeFileSync(join(cjs, "main.cjs"), block!)
    writeFileSync(join(cjs, "require.cjs"), `require("effect-failclosed")`)
    const required = await exec("node", [join(cjs, "require.cjs")], { cwd: cjs, env: ENV }).then(
      () => undefined,
      (e: { stderr: string }) => e.stderr
    )
    expect(required).toContain("ERR_PACKAGE_PATH_NOT_EXPORTED")
    const { stdout } = await exec("node", [join(cjs, "main.cjs")], { cwd: cjs, env: ENV })
    expect(stdout.trim()).toBe("LocalOnly")
  })

  it("shares one copy of effect with its consumer", () => {
    const nested = join(project, "node_modules", "effect-failclosed", "node_modules")
    expect(existsSync(join(nested, "effect"))).toBe(false)
    expect(existsSync(join(nested, "@effect"))).toBe(false)
    expect(lstatSync(join(project, "node_modules", "effect")).isSymbolicLink()).toBe(true)
    expect(realpathSync(join(project, "node_modules", "effect"))).toBe(
      realpathSync(join(root, "node_modules", "effect"))
    )
  })

  it("type-checks a consumer program against the declarations and runs it on LocalOnly from dist/", async () => {
    const { stdout } = await exec("node", [join(project, "out", "main.js"), "local"], { cwd: project, env: ENV })
    const result = JSON.parse(stdout)
    expect(result).toEqual({
      resolved: expect.stringMatching(/\/node_modules\/effect-failclosed\/dist\/guard\/index\.js$/),
      resolvedSubpath: expect.stringMatching(/\/node_modules\/effect-failclosed\/dist\/guard\/KeyValueStore\.js$/),
      name: "Ada",
      backend: "local",
      greeting: "hello",
      mode: "LocalOnly"
    })
  })

  it("installs no @effect/experimental for a root consumer, and only the sub-paths import it", async () => {
    expect(existsSync(join(project, "node_modules", "@effect", "experimental"))).toBe(false)
    const dist = join(project, "node_modules", "effect-failclosed", "dist")
    const imports = (file: string) =>
      [...readFileSync(join(dist, file), "utf8").matchAll(/from "([^"]+)"/g)].map((m) => m[1] ?? "")
    const importers = readdirSync(dist, { recursive: true, encoding: "utf8" })
      .filter((f) => f.endsWith(".js") && imports(f).some((m) => m.startsWith("@effect/experimental")))
      .sort()
    expect(importers).toEqual(["Persistence.js", "RateLimiterStore.js"])
    // without it, the sub-path fails to load, naming the missing package; the root (above) runs
    const probe = join(project, "probe.mjs")
    writeFileSync(
      probe,
      `import("effect-failclosed/Persistence").catch((e) => { console.log(e.message); process.exit(3) })`
    )
    const failure = await exec("node", [probe], { cwd: project, env: ENV }).then(
      () => undefined,
      (e: { code: number; stdout: string }) => e
    )
    expect(failure?.code).toBe(3)
    expect(failure?.stdout).toContain("@effect/experimental")
  })

  it("type-checks and runs a consumer of the @effect/experimental adapters on LocalOnly from dist/", async () => {
    const { stdout } = await exec("node", [join(experimentalProject, "out", "main.js"), "local"], {
      cwd: experimentalProject,
      env: ENV
    })
    expect(JSON.parse(stdout)).toEqual({
      persistence: expect.stringMatching(/\/node_modules\/effect-failclosed\/dist\/guard\/Persistence\.js$/),
      rateLimiterStore: expect.stringMatching(/\/node_modules\/effect-failclosed\/dist\/guard\/RateLimiterStore\.js$/),
      name: "user 1",
      lookups: 1,
      remaining: 4
    })
  })

  it.scoped(
    "runs the consumer of the @effect/experimental adapters on StrictDistributed against a real redis-server",
    () =>
      Effect.gen(function* () {
        const redis = yield* redisServer()
        const { stdout } = yield* Effect.promise(() =>
          exec("node", [join(experimentalProject, "out", "main.js"), "strict"], {
            cwd: experimentalProject,
            env: { ...ENV, REDIS_URL: redis.url },
            timeout: 20_000
          })
        )
        expect(JSON.parse(stdout)).toMatchObject({ name: "user 1", lookups: 1, remaining: 4 })
        const keys = (yield* Effect.promise(() => redis.command("KEYS", "*"))).split("\n").sort()
        expect(keys).toEqual([expect.stringMatching(/^fc:p:/), expect.stringMatching(/^fc:\{rf:/)])
      })
  )

  it.scoped("runs the consumer program on StrictDistributed against a real redis-server", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const { stdout } = yield* Effect.promise(() =>
        exec("node", [join(project, "out", "main.js"), "strict"], {
          cwd: project,
          env: { ...ENV, REDIS_URL: redis.url },
          timeout: 20_000
        })
      )
      expect(JSON.parse(stdout)).toMatchObject({
        name: "Ada",
        backend: "redis",
        greeting: "hello",
        mode: "StrictDistributed"
      })
      const keys = yield* Effect.promise(() => redis.command("KEYS", "*"))
      expect(keys.split("\n")).toHaveLength(2)

      // the operator's command ships in the package: `npx effect-failclosed` runs node_modules/.bin/effect-failclosed
      const cli = (...args: Array<string>) =>
        Effect.promise(() =>
          exec(join(project, "node_modules", ".bin", "effect-failclosed"), args, {
            cwd: project,
            env: { ...ENV, REDIS_URL: redis.url },
            timeout: 20_000
          })
        )
      const entryKey = (yield* cli("key", "--keyspace", "profiles", "--key", '{ "id": 1 }')).stdout.trim()
      expect(keys.split("\n")).toContain(entryKey)
      const pattern = (yield* cli("pattern", "--keyspace", "profiles", "--no-tenant")).stdout.trim()
      expect(yield* Effect.promise(() => redis.command("--scan", "--pattern", pattern))).toBe(entryKey)
      const inspected = JSON.parse((yield* cli("inspect", entryKey)).stdout)
      expect(inspected).toMatchObject({
        key: entryKey,
        kind: "plain entry",
        of: { feature: "keyspace", name: "profiles", tenant: null },
        value: { name: "Ada" }
      })
    })
  )
})

describe("the packed tarball in a project on Effect 4", () => {
  /** the Effect 4 line's own node (Node 24) and effect 4, from the effect4/ workspace member: nothing is downloaded */
  const effect4 = join(root, "effect4", "node_modules")
  const node24 = join(effect4, ".bin", "node")

  /** imports each entry point in a project at `at` and returns what each import did */
  const probe = async (at: string) => {
    writeFileSync(
      join(at, "probe.mjs"),
      `const out = {}
for (const spec of ["effect-failclosed", "effect-failclosed/Keyspace", "effect-failclosed/HttpMiddleware"]) {
  out[spec] = await import(spec).then(() => "loaded", (e) => e.message)
}
console.log(JSON.stringify(out))`
    )
    const { stdout } = await exec(node24, [join(at, "probe.mjs")], { cwd: at, env: ENV })
    return JSON.parse(stdout) as Record<string, string>
  }

  /** a fresh project that installs the tarball as a user would, past the peer range (`--legacy-peer-deps`) */
  const install = async (at: string, packages: ReadonlyArray<string>) => {
    mkdirSync(at, { recursive: true })
    writeFileSync(join(at, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }))
    await exec(
      "npm",
      ["install", "--offline", "--ignore-scripts", "--no-package-lock", "--legacy-peer-deps", tarball, ...packages],
      { cwd: at, env: ENV }
    )
  }

  it("fails at import with an error naming the Effect 4 package, not a missing module", async () => {
    const at = join(dir, "consumer-effect4")
    await install(at, [join(effect4, "effect"), nm("ioredis")])
    const version = JSON.parse(readFileSync(join(at, "node_modules", "effect", "package.json"), "utf8")).version
    expect(version).toMatch(/^4\./)
    const results = await probe(at)
    expect(Object.keys(results)).toHaveLength(3)
    for (const [spec, message] of Object.entries(results)) {
      expect(message, spec).toContain(`effect-failclosed is the Effect 3 line, and this project has effect ${version}`)
      expect(message, spec).toContain("npm install effect-failclosed-effect4")
      expect(message, spec).not.toMatch(/Cannot find|ERR_/)
    }
  })

  it("fails at import with an error naming effect 3 when no effect is installed at all", async () => {
    const at = join(dir, "consumer-no-effect")
    await install(at, [nm("ioredis")])
    expect(existsSync(join(at, "node_modules", "effect"))).toBe(false)
    for (const [spec, message] of Object.entries(await probe(at))) {
      expect(message, spec).toContain(`needs effect 3 (a peer dependency), and no "effect" package is installed`)
      expect(message, spec).toContain("effect-failclosed-effect4")
    }
  })
})
