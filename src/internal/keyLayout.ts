/**
 * The head of every feature's Redis keys, in one place: the features build their keys from these,
 * and the public `KeyLayout` module builds its SCAN MATCH patterns from the same functions, so the
 * two cannot drift apart. See `keys.ts` for the segments themselves.
 *
 *   Keyspace        <prefix>:<name>:<tenant>:<key hash>
 *   RateLimiter     <prefix>:{rl:<algorithm>:<name>:<tenant>:<subject hash>…
 *   ReplayGuard     <prefix>:{rg:<name>:<tenant>:<nonce hash>}
 *   KeyValueStore   <prefix>:~kv:<name>:<key hash>
 */
import type { RateLimitAlgorithm } from "../DistributedCache.js"
import { encodeSegment } from "./keys.js"

/** @internal */
export const ALGORITHM_TAG: Record<RateLimitAlgorithm, string> = {
  "fixed-window": "f",
  "sliding-window": "s",
  "token-bucket": "t"
}

/** `<keyPrefix>:<name>:` @internal */
export const keyspaceHead = (keyPrefix: string, name: string): string => `${keyPrefix}:${encodeSegment(name)}:`

/** `<keyPrefix>:{rl:<algorithm>:<name>:` (`algorithmTag` is one character) @internal */
export const rateLimiterHead = (keyPrefix: string, algorithmTag: string, name: string): string =>
  `${keyPrefix}:{rl:${algorithmTag}:${encodeSegment(name)}:`

/** `<keyPrefix>:{rg:<name>:` @internal */
export const replayGuardHead = (keyPrefix: string, name: string): string => `${keyPrefix}:{rg:${encodeSegment(name)}:`

/** `<keyPrefix>:~kv:<name>:`: `~` is outside base64url, so no Keyspace prefix can start with it @internal */
export const keyValueStoreHead = (keyPrefix: string, name: string): string => `${keyPrefix}:~kv:${encodeSegment(name)}:`
