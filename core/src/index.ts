/**
 * `@effect-failclosed/core`: the mechanism under the Effect packages, in plain TypeScript. Nothing here imports
 * `effect`: time and decoding come in as functions the wrapper passes, and what happened comes back as plain data.
 * The Effect packages (`effect-failclosed` for Effect 3, and the Effect 4 line) are thin wrappers over it, so nodes of
 * both lines share one key layout, one set of scripts and one entry envelope.
 */
export * from "./breaker.js"
export * from "./connection.js"
export * from "./envelope.js"
export * from "./json.js"
export * from "./keys.js"
export * from "./lruOrder.js"
export * from "./batch.js"
export * from "./memoryStore.js"
export * from "./nearCache.js"
export * from "./nearEvents.js"
export * from "./readPipeline.js"
export * from "./redis/cluster.js"
export * from "./redis/deadlines.js"
export * from "./redis/options.js"
export * from "./redis/scripts.js"
export * from "./redis/send.js"
export * from "./redis/store.js"
export * from "./redis/tracking.js"
export * from "./redis/trackingConnection.js"
export * from "./store.js"
export * from "./tags.js"
