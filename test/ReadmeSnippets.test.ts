/**
 * Every `ts` block of the README compiles as pasted: alone in a file, as an ES module, against the package's public
 * entry points. A block may opt out only with `<!-- not compiled: REASON -->` on the line before its fence.
 * `README_PATH` (relative to the project root) points the test at another file, to try the test itself.
 */
import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { extractSnippets, formatErrors, PROJECT_ROOT, typeCheckSnippets } from "./utils/readmeSnippets.js"

const readmePath = path.resolve(PROJECT_ROOT, process.env.README_PATH ?? "README.md")
const readmeName = readmePath.startsWith(PROJECT_ROOT + path.sep)
  ? path.relative(PROJECT_ROOT, readmePath)
  : readmePath
const snippets = extractSnippets(fs.readFileSync(readmePath, "utf8"))
const compiled = snippets.filter((snippet) => snippet.skipReason === undefined)
const skipped = snippets.filter((snippet) => snippet.skipReason !== undefined)

describe("README snippets", () => {
  it("finds the ts blocks, and every opted-out block says why", () => {
    console.info(`${readmeName}: ${compiled.length} ts blocks compiled, ${skipped.length} skipped`)
    const unexplained = skipped.filter((snippet) => snippet.skipReason === "")
    assert.deepStrictEqual(
      unexplained.map((snippet) => `${readmeName}:${snippet.firstLine - 1}`),
      [],
      "a `<!-- not compiled: REASON -->` marker needs a reason"
    )
    // Guards the extraction itself: a fence syntax it misses would otherwise make the test pass on nothing.
    assert.isAtLeast(compiled.length, 5, `only ${compiled.length} ts blocks found in ${readmeName}`)
  })

  it("type-checks every block that does not opt out", { timeout: 60_000 }, () => {
    const errors = typeCheckSnippets(compiled)
    if (errors.length > 0) {
      assert.fail(`${errors.length} type error(s) in the ${readmeName} snippets:\n${formatErrors(readmeName, errors)}`)
    }
  })
})
