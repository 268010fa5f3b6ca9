/**
 * Where the library keeps things in Redis, for operators: `pattern` gives the `SCAN … MATCH` /
 * `redis-cli --scan --pattern` glob of a keyspace, a tenant of it, a rate limiter, a replay guard,
 * a `KeyValueStore` or a Persistence store, and `entryKey` the full key of one keyspace entry, both
 * built by the same code that builds the keys (the core's key codec).
 *
 * Every key starts with the mode's `keyPrefix` (default `"fc"`), then a feature tag. Names and
 * tenant ids made of `[A-Za-z0-9._-]` are written as they are; any other id is written as `~`
 * followed by the unpadded base64url of its UTF-16LE code units, so no segment contains `:`, a
 * brace or a glob character whatever the id holds, and no id can produce another's segment. The
 * tenant segment is `-` for an entry without a tenant. Keys, subjects and nonces are stored only
 * as hashes: the SHA-256 of their canonical JSON, truncated to 144 bits (24 base64url characters).
 *
 * | feature         | Redis key                                                        |
 * | --------------- | ---------------------------------------------------------------- |
 * | `Keyspace`      | `<prefix>:k:<name>:<tenant>:<hash of the key's canonical JSON>`  |
 * | lock            | `<Keyspace key>~lock`                                            |
 * | `RateLimiter`   | `<prefix>:{r<f, s or t>:<name>:<tenant>:<hash of the subject>}…` |
 * | `ReplayGuard`   | `<prefix>:{g:<name>:<tenant>:<hash of the nonce>}`               |
 * | `KeyValueStore` | `<prefix>:v:<name>:-:<hash of the key's JSON>`                   |
 * | Persistence     | `<prefix>:p:<store id>:-:<hash of the key's JSON>`               |
 * | tag stamp       | `<prefix>:t:<keyspace name>:<tenant>:<hash of the tag's JSON>`   |
 *
 * A typical key (`fc`, keyspace `profiles`, tenant `acme`, key `{ userId: 12345 }`) is
 * `fc:k:profiles:acme:` and 24 characters: 43 bytes. This layout is new in 0.2.0 (see
 * CHANGELOG.md): 0.1.0 nodes do not share entries, budgets or claims with it.
 *
 * @since 0.1.0
 */
import { keyspaceEntryKey, type KeyspaceEntry, type ScanTarget, scanPattern } from "@effect-failclosed/core"

/**
 * What `pattern` describes: one feature by its name (the `name` given to `Keyspace.make`,
 * `RateLimiter.make`, `ReplayGuard.make` or `KeyValueStore.layer`, or a Persistence store id),
 * and optionally one tenant.
 *
 * `tenant`: omitted, every entry of the feature (all tenants, and entries without one); a string,
 * that tenant's entries only; `null`, only the entries written without a tenant. `keyPrefix` is
 * the mode's (default `"fc"`). A rate limiter's `algorithm`, when omitted, matches all three.
 *
 * @example
 * ```ts
 * import type { KeyLayout } from "effect-failclosed"
 *
 * const target: KeyLayout.Target = { keyspace: "profiles", tenant: "acme", keyPrefix: "checkout" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type Target = ScanTarget

/**
 * The Redis glob (for `SCAN … MATCH`, `redis-cli --scan --pattern`) that matches exactly the keys
 * of one keyspace, rate limiter, replay guard, `KeyValueStore` or Persistence store, or of one
 * tenant of it: built
 * from the same functions that build the keys, with glob characters escaped, so a tenant id like
 * `a*` or `[x]` matches that tenant and no other. A rate limiter's `algorithm`, omitted, matches
 * all three (`[fst]`). An empty name or tenant, or an invalid
 * `keyPrefix`, is a programmer error: a synchronous `Error`.
 *
 * Use it to look, not to delete: `Keyspace.clear({ tenant })` removes a tenant's entries (with
 * `SCAN` in batches), and rate-limit counters and replay claims are security state.
 *
 * @example
 * ```ts
 * import * as KeyLayout from "effect-failclosed/KeyLayout"
 *
 * // redis-cli --scan --pattern 'fc:k:profiles:acme:*'
 * console.log(KeyLayout.pattern({ keyspace: "profiles", tenant: "acme" }))
 * console.log(KeyLayout.pattern({ rateLimiter: "login", tenant: "acme" }))
 * console.log(KeyLayout.pattern({ replayGuard: "webhooks" })) // every tenant
 * ```
 *
 * @since 0.1.0
 * @category patterns
 */
export const pattern = (target: Target): string => scanPattern(target)

/**
 * The full Redis key of one keyspace entry (for `redis-cli GET`, `TTL`, `UNLINK`), from the
 * keyspace's name, the tenant (omitted or null: none), the key as JSON text (as the key Schema
 * encodes it; spacing and property order do not matter) and the mode's `keyPrefix`. Invalid input
 * is a synchronous `Error` that says what to fix.
 *
 * @example
 * ```ts
 * import * as KeyLayout from "effect-failclosed/KeyLayout"
 *
 * // fc:k:profiles:acme:<24 characters>
 * console.log(KeyLayout.entryKey({ keyspace: "profiles", tenant: "acme", key: '{"userId":12345}' }))
 * ```
 *
 * @since 0.2.0
 * @category keys
 */
export const entryKey = (entry: EntryKeyTarget): string => keyspaceEntryKey(entry)

/**
 * What {@link entryKey} takes: a keyspace's name, a tenant (omitted or null: the entry has none),
 * the key's JSON text and the mode's `keyPrefix` (default `"fc"`).
 *
 * @example
 * ```ts
 * import type { KeyLayout } from "effect-failclosed"
 *
 * const target: KeyLayout.EntryKeyTarget = { keyspace: "profiles", tenant: "acme", key: '{"userId":12345}' }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export type EntryKeyTarget = KeyspaceEntry
