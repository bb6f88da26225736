#!/usr/bin/env node
/**
 * The `tenant-infra` executable (see `Cli`).
 *
 * SIGTERM and SIGINT end it with exit code 0 whenever they arrive: while it loads (nothing has started, so it
 * exits at once), while it connects or migrates, and while it runs (the command is interrupted and its scope
 * closed: the relay lets the sends under way finish and releases its leases). A second signal during that stop
 * does not cut it short.
 *
 * @since 0.1.0
 */

// Loading the program takes a while (hundreds of milliseconds under tsx), and until a listener exists Node dies
// of the signal (exit 143). So the listeners come first and the program is imported after them: static imports
// would be loaded before any line here runs.
let onSignal = (): void => process.exit(0)
const listener = () => onSignal()
process.on("SIGTERM", listener)
process.on("SIGINT", listener)
// Shows in `ps` and `/proc/<pid>/comm`; it also tells a supervisor (or a test) that the listeners are in place.
process.title = ["tenant-infra", ...process.argv.slice(2)].join(" ")

// The command's packages are optional peers of the library: name them, with their ranges, when one is missing
// (`npm install @effect/cli` alone would bring the Effect 4 line). Exit 3: the environment is not set up.
const CLI_PEERS =
  "@effect/cli@~0.77.2 @effect/printer@~0.51.0 @effect/printer-ansi@~0.51.0 @effect/platform-node@^0.108.2"
const missingPeer = (error: unknown): never => {
  const code = typeof error === "object" && error !== null ? Reflect.get(error, "code") : undefined
  if (code !== "ERR_MODULE_NOT_FOUND") throw error
  process.stderr.write(
    `tenant-infra: the command needs its optional peers: npm install ${CLI_PEERS}\n` +
      `(${error instanceof Error ? error.message.split("\n")[0] : String(error)})\n`
  )
  return process.exit(3)
}

const [NodeContext, NodeRuntime, Effect, Cli] = await Promise.all([
  import("@effect/platform-node/NodeContext"),
  import("@effect/platform-node/NodeRuntime"),
  import("effect/Effect"),
  import("./Cli.js")
]).catch(missingPeer)

// `runMain` interrupts the program on the first signal and then removes its own listeners; this one stays, so that
// a second signal while the relay finishes its sends does not kill the process half-way through its stop.
onSignal = () => {}

// `Cli.run` reports failures and installs its own logger; the runtime's would print them a second time.
Cli.run(process.argv).pipe(
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({
    disableErrorReporting: true,
    disablePrettyLogger: true,
    teardown: (exit, onExit) =>
      Cli.teardown(exit, (code) => {
        // Ended: a signal now, while Node waits for the handles left open, ends the process with this code.
        onSignal = () => process.exit(code)
        // The program's scopes are closed: a handle still open now (seen: a pooled connection still being made
        // when its pool closed, under contention) must not keep a finished command alive.
        setTimeout(() => process.exit(code), 2_000).unref()
        onExit(code)
      })
  })
)
