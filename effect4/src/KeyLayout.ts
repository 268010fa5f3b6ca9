/**
 * The key layout, for operators: the Redis key of one Keyspace entry, and the SCAN pattern of a keyspace, rate
 * limiter, replay guard or store (the core's: one layout for both Effect lines). The same names as
 * `effect-failclosed/KeyLayout`.
 *
 * @since 0.1.0
 */
import { keyspaceEntryKey, type KeyspaceEntry, scanPattern, type ScanTarget } from "@effect-failclosed/core"

/**
 * What {@link pattern} describes: one feature by name, optionally one tenant (`null`: only entries written without
 * one), and the mode's `keyPrefix` (default `"fc"`).
 *
 * @example
 * ```ts
 * import { KeyLayout } from "effect-failclosed-effect4"
 *
 * const target: KeyLayout.Target = { keyspace: "profiles", tenant: "acme" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type Target = ScanTarget

/**
 * One Keyspace entry as an operator names it: keyspace, tenant, the key as JSON text, key prefix.
 *
 * @example
 * ```ts
 * import { KeyLayout } from "effect-failclosed-effect4"
 *
 * const entry: KeyLayout.Entry = { keyspace: "profiles", tenant: "acme", key: '{"userId":12345}' }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type Entry = KeyspaceEntry

/**
 * The Redis glob that matches exactly the keys of one target (for `SCAN … MATCH`, `redis-cli --scan --pattern`).
 * Invalid input is a synchronous `Error`.
 *
 * @example
 * ```ts
 * import { KeyLayout } from "effect-failclosed-effect4"
 *
 * KeyLayout.pattern({ keyspace: "profiles", tenant: "acme" }) // "fc:k:profiles:acme:*"
 * ```
 *
 * @since 0.1.0
 * @category key layout
 */
export const pattern: (target: Target) => string = scanPattern

/**
 * The full Redis key of one Keyspace entry (for `redis-cli GET`, `TTL`, `UNLINK`).
 *
 * @example
 * ```ts
 * import { KeyLayout } from "effect-failclosed-effect4"
 *
 * KeyLayout.entryKey({ keyspace: "profiles", tenant: "acme", key: '{"userId":12345}' })
 * ```
 *
 * @since 0.1.0
 * @category key layout
 */
export const entryKey: (entry: Entry) => string = keyspaceEntryKey
