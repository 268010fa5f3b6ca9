/**
 * One invalidation connection: a dedicated connection to one Redis master (the single node, the Sentinel master, or
 * one master of a Cluster) on which Redis' server-assisted client-side caching is turned on in broadcast mode, and
 * whose heartbeat proves that it is still listening. `Tracking` (`tracking.ts`) owns one per master and aggregates
 * their proofs; this class only knows its own connection.
 *
 *   CLIENT ID                                   -> id
 *   CLIENT TRACKING on REDIRECT id BCAST PREFIX <keyspace prefix> …
 *   SUBSCRIBE __redis__:invalidate
 *
 * RESP2 (ioredis 5) has no push messages on a normal connection, but a connection in Pub/Sub mode that tracking
 * redirects to receives them as messages on `__redis__:invalidate`; the connection may redirect to itself. BCAST keeps
 * no per-key state in Redis (no tracking table that grows with what was read, no per-read command on the data
 * connection, which the store batches and pipelines) and sends, once per Redis event-loop iteration, the keys of the
 * prefixes that changed. A flush (FLUSHALL, FLUSHDB) is a message without keys.
 *
 * Proof (`proven`): tracking was enabled on this connection incarnation, the connection is ready, and it answered a
 * PING that was sent at most `maxStaleness` ago: Redis writes replies and invalidations to one socket in order, so
 * every invalidation Redis sent before that PONG has been read before it. A late PONG (this process stalled, Redis
 * paused, a partition TCP outlives) loses nothing: the invalidations wait in the socket before it, so the proof
 * comes back with the first PONG of a PING sent after the lapse. Only a new incarnation (the socket closed, Redis
 * dropped the client, a reconnect) loses invalidations: `enabled` tells the owner, with Redis' `run_id` (read before
 * tracking is enabled) so that a restart or a failover is told apart from a reconnect to the same server.
 * @internal
 */
import type { Redis } from "ioredis"

/** what the owner of a connection hears from it */
export interface TrackingConnectionOwner {
  /** the keyspace prefixes to track (read when tracking is enabled) */
  readonly prefixes: () => ReadonlyArray<string>
  /**
   * tracking was enabled on a new incarnation: nothing read before is known to be current. `runId`: the server's
   * `run_id` (undefined when INFO is not allowed)
   */
  readonly enabled: (connection: TrackingConnection, runId: string | undefined) => void
  /** the connection closed (it reconnects by itself while its retry strategy allows) */
  readonly lost: (connection: TrackingConnection, reason: string) => void
  /** the connection ended for good (no more reconnects): the owner may open another */
  readonly ended: (connection: TrackingConnection) => void
  /** a heartbeat was answered: the proof may have come (back) */
  readonly answered: (connection: TrackingConnection) => void
  /** an invalidation message: a list of keys, or anything else for a flush */
  readonly invalidation: (message: unknown) => void
  /** tracking could not be enabled (an ACL without CLIENT, an old Redis) */
  readonly refused: (connection: TrackingConnection) => void
}

const CHANNEL = "__redis__:invalidate"
/** pings sent and not answered yet, at most: a black-holed connection does not queue one per tick forever */
const MAX_PINGS_IN_FLIGHT = 8

/** @internal */
export class TrackingConnection {
  private enabled = false
  /** performance.now() when the last answered PING was sent (on this incarnation, after tracking was enabled) */
  private proofSentAt = -Infinity
  /** performance.now() when the last PING was sent (answered or not) */
  private lastPingAt = -Infinity
  private pingsInFlight = 0
  /** counts the connection's "ready" events: a reply of an earlier incarnation never enables a later one */
  private incarnation = 0
  private dropped = false

  constructor(
    /** where it connects (`host:port` of a cluster master; "" for the single node or the Sentinel master) */
    readonly address: string,
    private readonly connection: Redis,
    private readonly owner: TrackingConnectionOwner
  ) {
    connection.on("error", ignore)
    connection.on("ready", () => this.enable(++this.incarnation))
    connection.on("close", () => {
      if (this.dropped) return
      this.enabled = false
      this.pingsInFlight = 0
      owner.lost(this, "the invalidation connection closed")
    })
    connection.on("end", () => {
      if (!this.dropped) owner.ended(this)
    })
    connection.on("messageBuffer", (channel: Buffer, message: unknown) => {
      if (this.dropped || channel.toString() !== CHANNEL) return
      owner.invalidation(message)
    })
    connection.connect().catch(ignore)
  }

  /** tracking on, connection ready, a PING sent at most `maxStalenessMillis` before `now` answered */
  proven(maxStalenessMillis: number, now: number): boolean {
    return this.enabled && this.connection.status === "ready" && now - this.proofSentAt <= maxStalenessMillis
  }

  /** one heartbeat (the owner's timer) */
  heartbeat(): void {
    if (this.enabled && this.connection.status === "ready") this.ping()
  }

  /**
   * The proof lapsed (seen by a read before the heartbeat timer): a PING now, unless one that can bring the proof back
   * is already on its way (sent after the last proof and at most `maxStalenessMillis` ago). After a stall of this
   * process the timer's PING may be one interval away; this one is answered one round trip after the read.
   */
  heartbeatIfLapsed(maxStalenessMillis: number, now: number): void {
    if (!this.enabled || this.connection.status !== "ready") return
    if (this.lastPingAt > this.proofSentAt && now - this.lastPingAt <= maxStalenessMillis) return
    this.ping()
  }

  /** closes the connection for good; the owner hears nothing more from it */
  drop(): void {
    if (this.dropped) return
    this.dropped = true
    this.enabled = false
    this.pingsInFlight = 0
    const connection = this.connection
    connection.removeAllListeners()
    connection.on("error", ignore)
    connection.disconnect(false)
  }

  private enable(incarnation: number): void {
    const connection = this.connection
    const current = () => !this.dropped && this.incarnation === incarnation && connection.status === "ready"
    const args: Array<string> = []
    for (const prefix of this.owner.prefixes()) args.push("PREFIX", prefix)
    let runId: string | undefined
    connection
      .client("ID")
      .then((id) =>
        connection.info("server").then(
          (info) => {
            runId = /^run_id:(\w+)/m.exec(info)?.[1]
            return id
          },
          // an ACL without INFO: a restart is still seen, as the connection closing
          () => id
        )
      )
      .then((id) => connection.call("CLIENT", "TRACKING", "on", "REDIRECT", String(id), "BCAST", ...args))
      .then(() => connection.subscribe(CHANNEL))
      .then(
        () => {
          if (!current()) return
          this.enabled = true
          // a new incarnation: no earlier PONG proves anything
          this.proofSentAt = -Infinity
          this.owner.enabled(this, runId)
          this.ping()
        },
        () => {
          // the connection is tried again later
          if (current()) {
            this.owner.refused(this)
            connection.disconnect(true)
          }
        }
      )
  }

  private ping(): void {
    if (this.pingsInFlight >= MAX_PINGS_IN_FLIGHT) return
    this.pingsInFlight++
    const sentAt = performance.now()
    this.lastPingAt = sentAt
    const incarnation = this.incarnation
    this.connection.ping().then(
      () => {
        if (this.dropped) return
        if (this.pingsInFlight > 0) this.pingsInFlight--
        if (!this.enabled || this.incarnation !== incarnation) return
        if (sentAt > this.proofSentAt) this.proofSentAt = sentAt
        this.owner.answered(this)
      },
      () => {
        if (!this.dropped && this.pingsInFlight > 0) this.pingsInFlight--
      }
    )
  }
}

const ignore = () => {}
