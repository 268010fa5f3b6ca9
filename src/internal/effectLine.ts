/**
 * The Effect 3 line refuses to load on another Effect: a clear error naming the package to use instead, before any
 * module of effect is loaded. Without it, a project on Effect 4 that installs this package (npm's `latest` of
 * `effect` is 4.x; `--legacy-peer-deps` gets past the peer range) crashes at start with a missing-module error
 * (`Cannot find module …/effect/dist/Either.js`) that names neither the cause nor the fix.
 *
 * Node links a module's whole import graph before it runs any of it, so a check inside the library's modules would
 * come too late: the published entry points (`dist/guard/*.js`, written by `scripts/entryGuards.mjs`) run this check
 * first and only then import the module (a dynamic import). No import from `effect` here.
 */
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"

/** the package of each Effect major, as the READMEs name them */
export const EFFECT_4_PACKAGE = "effect-failclosed-effect4"

/**
 * The message for a project whose `effect` is not Effect 3 (`version` undefined: no `effect` installed at all).
 * @internal
 */
export const wrongEffectMessage = (version: string | undefined): string =>
  version === undefined
    ? `effect-failclosed needs effect 3 (a peer dependency), and no "effect" package is installed. ` +
      `Install it: npm install effect@^3.22.4 @effect/platform@^0.97.2. ` +
      `On Effect 4 use ${EFFECT_4_PACKAGE} instead: npm install effect@latest ${EFFECT_4_PACKAGE}.`
    : `effect-failclosed is the Effect 3 line, and this project has effect ${version}. ` +
      `For Effect 4 install ${EFFECT_4_PACKAGE} (npm install ${EFFECT_4_PACKAGE}) and import from it: ` +
      `the same API, the same key layout, and it shares rate-limit budgets, replay windows and cache entries ` +
      `with effect-failclosed nodes on one Redis, so services can move to Effect 4 one by one. ` +
      `To stay on Effect 3: npm install effect@^3.22.4.`

/**
 * The version of the `effect` that this package would load (resolved from where the package is installed, as its own
 * imports are), or undefined when there is none.
 * @internal
 */
export const installedEffectVersion = (from: string): string | undefined => {
  let manifest: string
  try {
    manifest = createRequire(from).resolve("effect/package.json")
  } catch {
    return undefined
  }
  return (JSON.parse(readFileSync(manifest, "utf8")) as { readonly version?: string }).version
}

/**
 * Throws the clear error unless the `effect` this package resolves is 3.x.
 * @internal
 */
export const assertEffect3 = (from: string = import.meta.url): void => {
  const version = installedEffectVersion(from)
  if (version === undefined || !version.startsWith("3.")) throw new Error(wrongEffectMessage(version))
}
