/**
 * The least-recently-used order of a `Map` (insertion order = recency: a use moves a key to the end by delete +
 * set), shared by the memory store and the near cache.
 *
 * Moves: a use moves its entry only when more than capacity / 8 stores or moves happened since its place was set, so
 * hot entries are not moved on every use (a `Map` delete + set costs ~0.27 µs, about a fifth of a near hit) and
 * eviction stays LRU within capacity / 8 (exact for small capacities).
 *
 * Eviction: `map.keys().next()` looks cheap, but V8 leaves a deleted entry in place until the table is rebuilt, and a
 * fresh iterator steps over every one of them: with evictions from the front, thousands. Measured on a 10,000-entry
 * LRU with every insert evicting one: 9–12 µs per eviction with a fresh iterator, 0.3 µs with the one kept here. Map
 * iterators survive deletions, inserts and clears and go on from where they were, in insertion order. The contract:
 * the caller deletes (or moves to the end) every key `oldest()` returns before it asks again; then the next live key
 * after the iterator's position is the oldest one.
 * @internal
 */
export interface Recent {
  /** the recency tick of the entry's place in the order */
  touched: number
}

/** @internal */
export class LruOrder<K, V extends Recent> {
  private tick = 0
  private readonly refreshDistance: number
  private iterator: Iterator<K> | undefined = undefined

  constructor(
    private readonly map: Map<K, V>,
    capacity: number
  ) {
    this.refreshDistance = capacity >> 3
  }

  /** the `touched` of an entry about to be set (it goes to the young end) */
  stamp(): number {
    return ++this.tick
  }

  /** `entry` of `key` was used: moved to the young end when it is far enough from it */
  used(key: K, entry: V): void {
    if (this.tick - entry.touched > this.refreshDistance) {
      this.map.delete(key)
      this.map.set(key, entry)
      entry.touched = ++this.tick
    }
  }

  /** the oldest key, or undefined when the map is empty */
  oldest(): K | undefined {
    if (this.iterator !== undefined) {
      const r = this.iterator.next()
      if (r.done !== true) return r.value
    }
    // the first call, or the iterator reached the end (it is done for good): a new one from the start
    this.iterator = this.map.keys()
    const r = this.iterator.next()
    return r.done === true ? undefined : r.value
  }
}
