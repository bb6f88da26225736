/**
 * Messages per second through `Mailer.layerSmtp` to a local SMTP server (the `smtp-server` package the tests
 * use), against nodemailer's own pooled transport used directly with the same pool settings: the same number of
 * connections, the same messages per connection, the same messages in flight. One operation is a batch of
 * messages sent concurrently, so both sides keep every connection busy.
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Redacted from "effect/Redacted"
import nodemailer from "nodemailer"
import * as Mailer from "../src/Mailer.js"
import * as MailerSmtp from "../src/Mailer/Smtp.js"
import { makeSmtpServer } from "../test/utils/smtpServer.js"
import * as Harness from "./harness.js"

const MAX_CONNECTIONS = 5
const MESSAGES_PER_CONNECTION = 100
const BATCH = 20
const GOAL = 1.2
const PLAN: Harness.Plan = { warmup: 40, rounds: 7, opsPerRound: 10 }
const FROM = "Tenant Infra <noreply@infra.test>"

const messageFor = (n: number): Mailer.EmailMessage => ({
  key: `bench-${n}:email:admin${n}@acme.test`,
  to: `admin${n}@acme.test`,
  subject: `Welcome, tenant ${n}`,
  text: `Hello tenant ${n}, your workspace is ready and awaits activation.`,
  html: `<p>Hello tenant ${n}, your workspace is ready and awaits activation.</p>`
})

const program = Effect.gen(function*() {
  const server = yield* makeSmtpServer({ hideSize: true })
  const url = server.url()

  const runtime = yield* Effect.acquireRelease(
    Effect.sync(() =>
      ManagedRuntime.make(MailerSmtp.layer({
        url: Redacted.make(url),
        from: FROM,
        maxConnections: MAX_CONNECTIONS,
        maxMessagesPerConnection: MESSAGES_PER_CONNECTION
      }))
    ),
    (runtime) => Effect.promise(() => runtime.dispose())
  )
  const mailer = yield* Effect.promise(() => runtime.runPromise(Mailer.Mailer))

  const transport = yield* Effect.acquireRelease(
    Effect.sync(() =>
      nodemailer.createTransport({
        pool: true,
        host: "127.0.0.1",
        port: server.port,
        secure: false,
        maxConnections: MAX_CONNECTIONS,
        maxMessages: MESSAGES_PER_CONNECTION,
        connectionTimeout: 5000,
        greetingTimeout: 5000,
        socketTimeout: 15000
      })
    ),
    (transport) => Effect.sync(() => transport.close())
  )

  let sequence = 0
  const batch = () => Array.from({ length: BATCH }, () => messageFor(sequence++))

  const viaLayer = () =>
    runtime.runPromise(Effect.forEach(batch(), (message) => mailer.send(message), { concurrency: BATCH }))

  const viaNodemailer = () =>
    Promise.all(
      batch().map((message) =>
        transport.sendMail({
          from: FROM,
          to: message.to,
          subject: message.subject,
          text: message.text,
          html: message.html,
          messageId: Mailer.messageIdFor(message.key, FROM)
        })
      )
    )

  yield* Console.log(
    `${MAX_CONNECTIONS} connections, ${MESSAGES_PER_CONNECTION} messages per connection, batches of ${BATCH}; ` +
      `${PLAN.warmup} warm-up batches, then ${PLAN.rounds} rounds x ${PLAN.opsPerRound} batches per candidate`
  )
  const report = yield* Harness.headToHead(
    { name: "layerSmtp", op: viaLayer },
    { name: "nodemailer", op: viaNodemailer },
    PLAN,
    {
      goal: GOAL,
      describe: (measurement) =>
        `  ${measurement.name.padEnd(10)} ${
          Harness.format(measurement.opsPerSecond * BATCH).padStart(6)
        } messages/s  ` +
        `batch p50 ${Harness.format(measurement.p50Micros / 1000, 1)} ms  ` +
        `p99 ${Harness.format(measurement.p99Micros / 1000, 1)} ms`
    }
  )
  const plan = Harness.effectivePlan(PLAN)
  if (server.accepted().length !== (plan.warmup + plan.rounds * plan.opsPerRound) * BATCH * 2) {
    return yield* Effect.dieMessage(`the server accepted ${server.accepted().length} messages, not every one sent`)
  }
  return report
})

export const benchmark: Harness.Benchmark = {
  name: "SMTP throughput",
  run: Effect.scoped(program)
}
