/**
 * TLS test support: throw-away certificates made with `openssl` in a private temp dir, and a `redis-server` that
 * speaks TLS on a second port.
 *
 * The server is started through the harness (`startRedis`), so it is registered, killed on exit and checked for
 * orphans like every other test server. The harness waits for readiness on the plain port and uses it for
 * `redis-cli`; clients under test only ever get the TLS port (`tlsUrl`), which speaks nothing but TLS.
 */
import { execFile } from "node:child_process"
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import type { Scope } from "effect"
import { freePort, HOST, type RedisServer, startRedis } from "./RedisServer.js"

export interface Certificates {
  /** the private temp dir holding every file below (removed by `cleanup`) */
  readonly dir: string
  /** PEM of the CA that signed the server certificate */
  readonly ca: string
  /** PEM of another, unrelated CA (a client that trusts only this one must refuse the server) */
  readonly otherCa: string
  readonly caFile: string
  readonly serverCertFile: string
  readonly serverKeyFile: string
  /** PEM texts that must never appear in an error, log or span (the keys, and the certificates' bodies) */
  readonly material: ReadonlyArray<string>
  cleanup(): Promise<void>
}

const run = (cwd: string, args: ReadonlyArray<string>): Promise<void> =>
  new Promise((resolve, reject) => {
    execFile("openssl", args, { cwd, timeout: 20_000 }, (error, _stdout, stderr) =>
      error === null ? resolve() : reject(new Error(`openssl ${args.join(" ")} failed: ${stderr}`, { cause: error }))
    )
  })

/** an EC key and a self-signed CA certificate (EC: generated in milliseconds, unlike RSA) */
const makeCa = (dir: string, name: string) =>
  run(dir, [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.crt`,
    "-days",
    "2",
    "-subj",
    `/CN=effect-failclosed test ${name}`
  ])

/**
 * A CA, a server certificate it signed for `127.0.0.1` only (no DNS names: a client that checks the name against
 * anything else must refuse it), and an unrelated second CA.
 */
export const makeCertificates = async (): Promise<Certificates> => {
  const dir = await mkdtemp(join(tmpdir(), "effect-failclosed-tls-"))
  try {
    await makeCa(dir, "ca")
    await makeCa(dir, "other-ca")
    await run(dir, [
      "req",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      "server.key",
      "-out",
      "server.csr",
      "-subj",
      "/CN=127.0.0.1"
    ])
    await writeFile(join(dir, "server.ext"), "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    await run(dir, [
      "x509",
      "-req",
      "-in",
      "server.csr",
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      "server.crt",
      "-days",
      "2",
      "-extfile",
      "server.ext"
    ])
    const read = (file: string) => readFile(join(dir, file), "utf8")
    const [ca, otherCa, caKey, serverKey, serverCert] = await Promise.all(
      ["ca.crt", "other-ca.crt", "ca.key", "server.key", "server.crt"].map(read)
    )
    return {
      dir,
      ca: ca!,
      otherCa: otherCa!,
      caFile: join(dir, "ca.crt"),
      serverCertFile: join(dir, "server.crt"),
      serverKeyFile: join(dir, "server.key"),
      material: [ca!, otherCa!, caKey!, serverKey!, serverCert!].flatMap(pemBodyChunks),
      cleanup: () => rm(dir, { recursive: true, force: true })
    }
  } catch (error) {
    await rm(dir, { recursive: true, force: true })
    throw error
  }
}

/** the base64 lines of a PEM text (each 64 characters but the last): any of them leaking is a leak */
const pemBodyChunks = (pem: string): Array<string> =>
  pem
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line.length >= 16 && !line.startsWith("-----"))

export interface TlsRedis {
  readonly server: RedisServer
  readonly tlsPort: number
  /** `rediss://127.0.0.1:<tlsPort>` */
  readonly tlsUrl: string
}

/**
 * Starts a redis-server with a TLS port that presents `certs`' server certificate (clients are not asked for one).
 * `args` are appended. Retries with another TLS port if the free one was taken in the meantime.
 */
export const startTlsRedis = async (certs: Certificates, args: ReadonlyArray<string> = []): Promise<TlsRedis> => {
  let failure: unknown
  for (let attempt = 0; attempt < 3; attempt++) {
    const tlsPort = await freePort()
    try {
      const server = await startRedis({
        args: [
          "--tls-port",
          String(tlsPort),
          "--tls-cert-file",
          certs.serverCertFile,
          "--tls-key-file",
          certs.serverKeyFile,
          "--tls-ca-cert-file",
          certs.caFile,
          "--tls-auth-clients",
          "no",
          ...args
        ]
      })
      return { server, tlsPort, tlsUrl: `rediss://${HOST}:${tlsPort}` }
    } catch (error) {
      failure = error
      if (!/address already in use/i.test(String(error))) break
    }
  }
  throw failure
}

/** Scoped certificates: made on acquire, removed on release. */
export const certificates: Effect.Effect<Certificates, never, Scope.Scope> = Effect.acquireRelease(
  Effect.promise(makeCertificates),
  (certs) => Effect.promise(() => certs.cleanup())
)

/** Scoped TLS server: started on acquire, stopped (killed, temp dir removed) on release. */
export const tlsRedisServer = (
  certs: Certificates,
  args?: ReadonlyArray<string>
): Effect.Effect<TlsRedis, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => startTlsRedis(certs, args)),
    ({ server }) => Effect.promise(() => server.stop())
  )
