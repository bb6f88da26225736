import type { Reporter, TestModule, TestRunEndReason } from "vitest/node"

/**
 * Ends every run with one plain line, `tests: N passed, N failed[, N skipped]`, that tools reading a log can
 * count without knowing vitest's own (coloured) summary.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(
    testModules: ReadonlyArray<TestModule>,
    unhandledErrors: ReadonlyArray<unknown>,
    reason: TestRunEndReason
  ): void {
    let passed = 0
    let failed = unhandledErrors.length
    let skipped = 0
    for (const testModule of testModules) {
      for (const test of testModule.children.allTests()) {
        const state = test.result().state
        if (state === "passed") passed++
        else if (state === "failed") failed++
        else skipped++
      }
      // A file that fails to load has no tests but must still count as a failure.
      if (testModule.state() === "failed" && testModule.children.size === 0) failed++
    }
    // A run can fail outside any test (a global setup that finds a server down): that must not read as clean.
    if (reason !== "passed" && failed === 0) failed = 1
    process.stdout.write(`\ntests: ${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}\n`)
  }
}
