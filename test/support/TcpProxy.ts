/**
 * A TCP proxy on loopback for partition tests: it forwards between its clients and one target, and can stop
 * forwarding (a black hole, both directions) without closing a socket, then forward again. Nothing is dropped: a
 * stopped proxy stops reading, so the bytes wait in the kernel as they would behind a partition that TCP outlives.
 */
import * as net from "node:net"
import { Effect } from "effect"
import type { Scope } from "effect"

export interface TcpProxy {
  readonly port: number
  /** `redis://127.0.0.1:<port>` */
  readonly url: string
  readonly isForwarding: boolean
  /** stops forwarding in both directions (sockets stay open; new connections are accepted and wait) */
  blackHole(): void
  /** forwards again, everything that waited first */
  forward(): void
  close(): Promise<void>
}

export const startTcpProxy = (targetPort: number, targetHost = "127.0.0.1"): Promise<TcpProxy> =>
  new Promise((resolve, reject) => {
    const sockets = new Set<net.Socket>()
    let forwarding = true
    const server = net.createServer((client) => {
      const upstream = net.connect(targetPort, targetHost)
      for (const s of [client, upstream]) {
        sockets.add(s)
        s.setNoDelay(true)
        s.on("error", () => {})
        s.on("close", () => {
          sockets.delete(s)
          client.destroy()
          upstream.destroy()
        })
        if (!forwarding) s.pause()
      }
      client.pipe(upstream)
      upstream.pipe(client)
    })
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port
      resolve({
        port,
        url: `redis://127.0.0.1:${port}`,
        get isForwarding() {
          return forwarding
        },
        blackHole: () => {
          forwarding = false
          for (const s of sockets) s.pause()
        },
        forward: () => {
          forwarding = true
          for (const s of sockets) s.resume()
        },
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy()
            server.close(() => done())
          })
      })
    })
  })

/** Scoped proxy for `it.scoped`: closed on release. */
export const tcpProxy = (targetPort: number): Effect.Effect<TcpProxy, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => startTcpProxy(targetPort)),
    (proxy) => Effect.promise(() => proxy.close())
  )
