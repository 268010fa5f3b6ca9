/**
 * The oldest key of a `Map` used as an LRU (insertion order = recency: a use moves a key to the end by delete + set).
 *
 * `map.keys().next()` looks cheap, but V8 leaves a deleted entry in place until the table is rebuilt, and a fresh
 * iterator steps over every one of them: with evictions from the front, thousands. Measured on a 10,000-entry LRU
 * with every insert evicting one: 9–12 µs per eviction with a fresh iterator, 0.3 µs with this one (a near miss in
 * `npm run bench` cost ~19 µs more than a plain get because of it). One iterator is kept instead: Map iterators
 * survive deletions, inserts and clears and go on from where they were, in insertion order.
 *
 * The contract: the caller deletes (or moves to the end) every key `next()` returns before it asks again; then the
 * next live key after the iterator's position is the oldest one.
 * @internal
 */
export class OldestKeys<K> {
  private iterator: Iterator<K> | undefined = undefined

  constructor(private readonly map: ReadonlyMap<K, unknown>) {}

  /** the oldest key, or undefined when the map is empty */
  next(): K | undefined {
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
