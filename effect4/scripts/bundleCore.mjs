// npm bundles only what is in the package's own node_modules, and a workspace hoists @effect-failclosed/core to the
// repository root. `prepack` copies the built core (package.json, dist, src) into effect4/node_modules so that npm
// bundles it (bundleDependencies), as the Effect 3 package's tarball does; `postpack` removes the copy again.
import { cpSync, mkdirSync, rmSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const here = join(dirname(fileURLToPath(import.meta.url)), "..")
const core = join(here, "..", "core")
const target = join(here, "node_modules", "@effect-failclosed", "core")
rmSync(target, { recursive: true, force: true })
if (process.argv[2] === "copy") {
  mkdirSync(target, { recursive: true })
  for (const entry of ["package.json", "dist", "src"])
    cpSync(join(core, entry), join(target, entry), { recursive: true })
}
