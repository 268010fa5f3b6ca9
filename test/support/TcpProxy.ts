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
  /**
   * Delays what the target sends to the connections open now by `ms` (in order; 0: no delay). Connections accepted
   * later are not delayed: one connection of a client (its data connection) can be made slower than another. Set it
   * once per connection: chunks delayed by different amounts may overtake each other.
   */
  delayRepliesOfOpenConnections(ms: number): void
  close(): Promise<void>
}

export const startTcpProxy = (targetPort: number, targetHost = "127.0.0.1"): Promise<TcpProxy> =>
  new Promise((resolve, reject) => {
    const sockets = new Set<net.Socket>()
    /** the reply delay of each open connection, by its upstream socket */
    const delays = new Map<net.Socket, { ms: number }>()
    let forwarding = true
    const server = net.createServer((client) => {
      const upstream = net.connect(targetPort, targetHost)
      const delay = { ms: 0 }
      delays.set(upstream, delay)
      for (const s of [client, upstream]) {
        sockets.add(s)
        s.setNoDelay(true)
        s.on("error", () => {})
        s.on("close", () => {
          sockets.delete(s)
          delays.delete(upstream)
          client.destroy()
          upstream.destroy()
        })
        if (!forwarding) s.pause()
      }
      client.pipe(upstream)
      // replies: written at once, or each chunk `delay.ms` after it arrived (timers of equal delay keep their order)
      upstream.on("data", (chunk: Buffer) => {
        if (delay.ms === 0) client.write(chunk)
        else setTimeout(() => client.write(chunk), delay.ms)
      })
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
        delayRepliesOfOpenConnections: (ms) => {
          for (const delay of delays.values()) delay.ms = ms
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
