/**
 * `npx tsx scratchpad/customTemplate.ts`: a welcome e-mail of the application's own, the package's templates for
 * everything else. Values go into the HTML through `NotificationTemplates.html`, which escapes each of them.
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { Mailer, NotificationTemplates, SmsGateway, TenantLifecycle, TenantNotifications } from "../src/index.js"

const templates: TenantNotifications.CustomTemplates = {
  email: (template, data, locale) =>
    template === "welcome" && locale === "en"
      ? {
        subject: `Welcome aboard, ${data.tenantName}`,
        text: `Hello ${data.tenantName},\n\nYour workspace "${data.tenantCode}" is ready for its first login.`,
        html: NotificationTemplates.html`<p>Hello ${data.tenantName},</p><p>Your workspace <b>${data.tenantCode}</b>
is ready for its first login.</p>`.value
      }
      : undefined // the package's template
}

const program = Effect.gen(function*() {
  const notifications = yield* TenantNotifications.TenantNotifications
  const { event } = yield* TenantLifecycle.create(
    yield* TenantLifecycle.newTenantId,
    { code: "acme", name: "Smith & Sons", contact: { email: "admin@acme.test" } },
    yield* TenantLifecycle.stamp({ actor: "signup" })
  )
  yield* notifications.notify(event)
  for (const sent of yield* (yield* Mailer.MemoryMailer).sent) {
    yield* Console.log(`${sent.subject}\n${sent.html}`)
  }
})

program.pipe(
  Effect.provide(
    TenantNotifications.layer({ templates }).pipe(
      Layer.provideMerge(Layer.merge(Mailer.layerMemory(), SmsGateway.layerMemory))
    )
  ),
  Effect.runPromise
)
