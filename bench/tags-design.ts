/**
 * `npx tsx bench/tags-design.ts`: the measurements behind the design of tags and batches (docs/tags-and-batches.md),
 * on a redis-server of its own (a free loopback port), with raw ioredis, before any of it was built:
 *
 * - reading an entry: untagged (one GET); tagged with lazy tag stamps, the stamps known in process (one GET and a
 *   comparison); tagged with the stamps read from Redis (GET, then MGET of the stamps: two round trips); an index-set
 *   design reads like an untagged entry;
 * - writing an entry: untagged (SET PX); index sets (SADD + PEXPIRE + SET, pipelined);
 * - invalidating a tag of 100,000 entries: a stamp (one SET); index sets (SSCAN + UNLINK in chunks of 1,000, the
 *   longest command timed); and, to show what must never be done, one Lua call that deletes them all;
 * - batches: 100 sequential GETs vs one MGET of 100 keys; 100 SET PX pipelined vs one script of 100 SETs vs MSET +
 *   100 PEXPIRE.
 *
 * Every figure is client time per operation (median of rounds) and redis-server CPU per operation (INFO cpu).
 */
import { Redis } from "ioredis"
import { startRedis } from "../test/support/RedisServer.js"

const ROUNDS = Number(process.env["ROUNDS"] ?? 5)
const OPS = Number(process.env["OPS"] ?? 4000)
const TAGGED = Number(process.env["TAGGED"] ?? 100_000)

const cpuSeconds = async (r: Redis): Promise<number> => {
  const info = await r.info("cpu")
  const f = (n: string) => Number(new RegExp(`^${n}:([0-9.]+)`, "m").exec(info)?.[1] ?? NaN)
  return f("used_cpu_user") + f("used_cpu_sys")
}

const median = (xs: Array<number>) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

/** µs per op (client) and µs of Redis CPU per op, median over rounds */
const measure = async (
  probe: Redis,
  ops: number,
  body: (i: number) => Promise<unknown>
): Promise<{ us: number; cpu: number }> => {
  const us: Array<number> = []
  const cpu: Array<number> = []
  for (let round = 0; round < ROUNDS; round++) {
    const c0 = await cpuSeconds(probe)
    const t0 = process.hrtime.bigint()
    for (let i = 0; i < ops; i++) await body(i)
    const t1 = process.hrtime.bigint()
    const c1 = await cpuSeconds(probe)
    us.push(Number(t1 - t0) / 1000 / ops)
    cpu.push(((c1 - c0) * 1e6) / ops)
  }
  return { us: median(us), cpu: median(cpu) }
}

const row = (name: string, m: { us: number; cpu: number }, base?: { us: number; cpu: number }) =>
  console.log(
    `| ${name} | ${m.us.toFixed(1)} | ${m.cpu.toFixed(2)} | ${base ? (m.us / base.us).toFixed(2) + "×" : ""} | ${
      base ? (m.cpu / base.cpu).toFixed(2) + "×" : ""
    } |`
  )

const main = async () => {
  const server = await startRedis()
  const r = new Redis(server.url, { enableAutoPipelining: false })
  const probe = new Redis(server.url)
  try {
    const value = JSON.stringify({ id: 12345, name: "Ada Lovelace", email: "ada@example.com", plan: "pro", n: 7 })
    const tags = ["org:7", "plan:pro"]
    const stampKeys = tags.map((t) => `fc:t:profiles:acme:${Buffer.from(t).toString("base64url")}`)
    await r.set(stampKeys[0]!, "AAAAAAAAAAAAAAAAAAAAAA")
    await r.set(stampKeys[1]!, "BBBBBBBBBBBBBBBBBBBBBB")
    // a tagged entry: a header line with the tags and their stamps, then the value
    const tagged = JSON.stringify([tags, ["AAAAAAAAAAAAAAAAAAAAAA", "BBBBBBBBBBBBBBBBBBBBBB"]]) + "\n" + value
    const KEYS = 1000
    for (let i = 0; i < KEYS; i++) {
      await r.set(`fc:k:profiles:acme:u${i}`, value, "PX", 3_600_000)
      await r.set(`fc:k:profiles:acme:t${i}`, tagged, "PX", 3_600_000)
    }
    const known = new Map([
      [stampKeys[0]!, "AAAAAAAAAAAAAAAAAAAAAA"],
      [stampKeys[1]!, "BBBBBBBBBBBBBBBBBBBBBB"]
    ])
    const checkTagged = (raw: string, stamps: (keys: Array<string>) => Array<string | null>) => {
      const nl = raw.indexOf("\n")
      const [ts, tokens] = JSON.parse(raw.slice(0, nl)) as [Array<string>, Array<string>]
      const current = stamps(ts.map((t) => `fc:t:profiles:acme:${Buffer.from(t).toString("base64url")}`))
      for (let i = 0; i < tokens.length; i++) if (current[i] !== tokens[i]) return undefined
      return JSON.parse(raw.slice(nl + 1))
    }

    console.log("\n### Reads (sequential, one connection)\n")
    console.log(
      "| case | µs/op | Redis CPU µs/op | time vs untagged | CPU vs untagged |\n| --- | ---: | ---: | ---: | ---: |"
    )
    const untagged = await measure(probe, OPS, async (i) =>
      JSON.parse((await r.get(`fc:k:profiles:acme:u${i % KEYS}`))!)
    )
    row("untagged GET (also: an index-set design's read)", untagged)
    const stampsKnown = await measure(probe, OPS, async (i) =>
      checkTagged((await r.get(`fc:k:profiles:acme:t${i % KEYS}`))!, (ks) => ks.map((k) => known.get(k) ?? null))
    )
    row("tagged, stamps known in process (tracked)", stampsKnown, untagged)
    const stampsRead = await measure(probe, OPS, async (i) => {
      const raw = (await r.get(`fc:k:profiles:acme:t${i % KEYS}`))!
      const nl = raw.indexOf("\n")
      const [ts] = JSON.parse(raw.slice(0, nl)) as [Array<string>]
      const current = await r.mget(ts.map((t) => `fc:t:profiles:acme:${Buffer.from(t).toString("base64url")}`))
      return checkTagged(raw, () => current)
    })
    row("tagged, stamps read from Redis (GET then MGET)", stampsRead, untagged)

    console.log("\n### Writes\n")
    console.log(
      "| case | µs/op | Redis CPU µs/op | time vs untagged | CPU vs untagged |\n| --- | ---: | ---: | ---: | ---: |"
    )
    const set = await measure(probe, OPS, (i) => r.set(`fc:k:profiles:acme:w${i % KEYS}`, value, "PX", 3_600_000))
    row("untagged SET PX (also: a stamp design's write, stamps known)", set)
    const indexed = await measure(probe, OPS, (i) => {
      const p = r.pipeline()
      for (const tag of tags) {
        const idx = `fc:i:profiles:acme:${tag}`
        p.sadd(idx, `fc:k:profiles:acme:x${i % KEYS}`)
        p.pexpire(idx, 3_600_000, "GT")
      }
      p.set(`fc:k:profiles:acme:x${i % KEYS}`, value, "PX", 3_600_000)
      return p.exec()
    })
    row("index sets: 2 × (SADD + PEXPIRE GT) + SET, one pipeline", indexed, set)

    console.log(`\n### invalidateTag over ${TAGGED.toLocaleString("en")} tagged entries\n`)
    console.log("| design | wall time ms | longest command ms | Redis CPU ms |\n| --- | ---: | ---: | ---: |")
    const fill = async (idx: string) => {
      for (let i = 0; i < TAGGED; i += 1000) {
        const p = r.pipeline()
        const members: Array<string> = []
        for (let j = i; j < i + 1000 && j < TAGGED; j++) {
          const key = `fc:k:big:acme:${idx}:${j}`
          p.set(key, value, "PX", 3_600_000)
          members.push(key)
        }
        p.sadd(idx, ...members)
        await p.exec()
      }
    }
    {
      const c0 = await cpuSeconds(probe)
      const t0 = performance.now()
      await r.set("fc:t:big:acme:org7", "CCCCCCCCCCCCCCCCCCCCCC")
      const ms = performance.now() - t0
      const c1 = await cpuSeconds(probe)
      console.log(`| lazy stamp: one SET | ${ms.toFixed(2)} | ${ms.toFixed(2)} | ${((c1 - c0) * 1000).toFixed(2)} |`)
    }
    await fill("fc:i:big:acme:a")
    {
      const c0 = await cpuSeconds(probe)
      const t0 = performance.now()
      let cursor = "0"
      let longest = 0
      do {
        const s0 = performance.now()
        const [next, keys] = await r.sscan("fc:i:big:acme:a", cursor, "COUNT", 1000)
        longest = Math.max(longest, performance.now() - s0)
        cursor = next
        if (keys.length > 0) {
          const u0 = performance.now()
          await r.unlink(...keys)
          longest = Math.max(longest, performance.now() - u0)
        }
      } while (cursor !== "0")
      await r.unlink("fc:i:big:acme:a")
      const ms = performance.now() - t0
      const c1 = await cpuSeconds(probe)
      console.log(
        `| index set: SSCAN 1000 + UNLINK 1000, repeated | ${ms.toFixed(1)} | ${longest.toFixed(2)} | ${(
          (c1 - c0) *
          1000
        ).toFixed(1)} |`
      )
    }
    await fill("fc:i:big:acme:b")
    {
      const c0 = await cpuSeconds(probe)
      const t0 = performance.now()
      await r.eval(
        "local m = redis.call('SMEMBERS', KEYS[1]) for i = 1, #m do redis.call('UNLINK', m[i]) end redis.call('UNLINK', KEYS[1]) return #m",
        1,
        "fc:i:big:acme:b"
      )
      const ms = performance.now() - t0
      const c1 = await cpuSeconds(probe)
      console.log(
        `| (never) one Lua loop over the set: Redis blocked throughout | ${ms.toFixed(1)} | ${ms.toFixed(1)} | ${(
          (c1 - c0) *
          1000
        ).toFixed(1)} |`
      )
    }

    console.log("\n### Batches of 100 keys (per key)\n")
    console.log(
      "| case | µs/key | Redis CPU µs/key | time vs sequential GET | CPU vs GET |\n| --- | ---: | ---: | ---: | ---: |"
    )
    const BATCH = 100
    const batchKeys = (i: number) =>
      Array.from({ length: BATCH }, (_, j) => `fc:k:profiles:acme:u${(i * BATCH + j) % KEYS}`)
    const seq = await measure(probe, OPS / BATCH, async (i) => {
      for (const k of batchKeys(i)) await r.get(k)
    })
    const perKey = (m: { us: number; cpu: number }) => ({ us: m.us / BATCH, cpu: m.cpu / BATCH })
    row("100 sequential GETs", perKey(seq))
    row("one MGET of 100", perKey(await measure(probe, OPS / BATCH, (i) => r.mget(batchKeys(i)))), perKey(seq))
    const pipelinedGets = await measure(probe, OPS / BATCH, (i) => {
      const p = r.pipeline()
      for (const k of batchKeys(i)) p.get(k)
      return p.exec()
    })
    row("100 GETs in one pipeline", perKey(pipelinedGets), perKey(seq))
    const setSeq = await measure(probe, OPS / BATCH, async (i) => {
      for (const k of batchKeys(i)) await r.set(k, value, "PX", 3_600_000)
    })
    row("100 sequential SET PX", perKey(setSeq), perKey(seq))
    row(
      "100 SET PX in one pipeline",
      perKey(
        await measure(probe, OPS / BATCH, (i) => {
          const p = r.pipeline()
          for (const k of batchKeys(i)) p.set(k, value, "PX", 3_600_000)
          return p.exec()
        })
      ),
      perKey(seq)
    )
    const SET_MANY =
      "for i = 1, #KEYS do redis.call('SET', KEYS[i], ARGV[i * 2 - 1], 'PX', ARGV[i * 2]) end return #KEYS"
    const sha = (await r.script("LOAD", SET_MANY)) as string
    row(
      "one script of 100 SET PX",
      perKey(
        await measure(probe, OPS / BATCH, (i) => {
          const keys = batchKeys(i)
          const args: Array<string | number> = []
          for (let j = 0; j < keys.length; j++) args.push(value, 3_600_000)
          return r.evalsha(sha, keys.length, ...keys, ...args)
        })
      ),
      perKey(seq)
    )
    row(
      "MSET + 100 PEXPIRE in one pipeline",
      perKey(
        await measure(probe, OPS / BATCH, (i) => {
          const keys = batchKeys(i)
          const p = r.pipeline()
          p.mset(...keys.flatMap((k) => [k, value]))
          for (const k of keys) p.pexpire(k, 3_600_000)
          return p.exec()
        })
      ),
      perKey(seq)
    )
  } finally {
    r.disconnect()
    probe.disconnect()
    await server.stop()
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e)
    process.exit(1)
  }
)
