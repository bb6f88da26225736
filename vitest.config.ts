import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    setupFiles: ["./test/setup.ts"],
    globalSetup: ["./test/globalSetup.ts"],
    reporters: ["default", "./test/summaryReporter.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    fakeTimers: { toFake: undefined }
  }
})
