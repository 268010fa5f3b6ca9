#!/usr/bin/env node
/**
 * `npx effect-failclosed`: the bin of the package (the commands are in `run.ts`).
 */
import { InspectFailed } from "./inspect.js"
import { HELP, run, Usage } from "./run.js"

const main = async () => {
  try {
    const { code, out } = await run(process.argv.slice(2), process.env)
    process.stdout.write(out)
    process.exitCode = code
  } catch (error) {
    if (error instanceof InspectFailed) {
      process.stderr.write(`effect-failclosed: ${error.message}\n`)
      process.exitCode = 3
    } else if (error instanceof Usage || String((error as { code?: unknown })?.code).startsWith("ERR_PARSE_ARGS")) {
      process.stderr.write(`effect-failclosed: ${(error as Error).message}\n\n${HELP}`)
      process.exitCode = 2
    } else {
      throw error
    }
  }
}

void main()
