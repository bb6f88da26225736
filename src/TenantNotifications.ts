/**
 * Turns tenant events into messages and sends them. The notification matrix:
 *
 * | event | message |
 * | --- | --- |
 * | `TenantCreated` | welcome e-mail |
 * | `TenantActivated` | SMS to the tenant's phone; e-mail when it has none |
 * | `TenantSuspended` | e-mail with the reason |
 * | `TenantDeleted` | e-mail with the reason |
 * | `TenantRestored` | e-mail |
 * | `TenantUpdated` | nothing |
 *
 * Recipients come from the tenant's contact as it was when the event happened (the event carries it), texts
 * from `NotificationTemplates` in the contact's locale. Every message has a key, `<event id>:<channel>:<recipient>`,
 * from which the Message-ID and the SMS idempotency key are derived: delivering the same event twice produces
 * recognisable repeats, never new messages.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import { Mailer } from "./Mailer.js"
import type { EmailMessage } from "./Mailer.js"
import * as NotificationTemplates from "./NotificationTemplates.js"
import type { SendError } from "./SendError.js"
import * as SendRetry from "./SendRetry.js"
import type { SmsMessage } from "./SmsGateway.js"
import { SmsGateway } from "./SmsGateway.js"
import type { TenantEvent } from "./TenantEvent.js"

/**
 * The template a message was written from.
 *
 * @since 0.1.0
 * @category models
 */
export type Template = "welcome" | "activated" | "suspended" | "deleted" | "restored"

/**
 * One e-mail an event calls for.
 *
 * @since 0.1.0
 * @category models
 */
export interface EmailNotification {
  readonly channel: "email"
  readonly template: Template
  readonly event: TenantEvent
  readonly message: EmailMessage
}

/**
 * One SMS an event calls for.
 *
 * @since 0.1.0
 * @category models
 */
export interface SmsNotification {
  readonly channel: "sms"
  readonly template: Template
  readonly event: TenantEvent
  readonly message: SmsMessage
}

/**
 * @since 0.1.0
 * @category models
 */
export type Notification = EmailNotification | SmsNotification

/**
 * The key of a message: the same event and recipient always give the same key.
 *
 * @since 0.1.0
 * @category constructors
 */
export const keyOf = (eventId: string, channel: "email" | "sms", recipient: string): string =>
  `${eventId}:${channel}:${recipient.toLowerCase()}`

const email = (event: TenantEvent, template: Template, rendered: NotificationTemplates.RenderedEmail) => {
  const to = event.tenant.contact.email
  const notification: EmailNotification = {
    channel: "email",
    template,
    event,
    message: { key: keyOf(event.eventId, "email", to), to, ...rendered }
  }
  return notification
}

/**
 * The messages an event calls for, rendered and addressed; pure.
 *
 * @since 0.1.0
 * @category constructors
 */
export const notificationsFor = (event: TenantEvent): ReadonlyArray<Notification> => {
  const { contact } = event.tenant
  const data: NotificationTemplates.TemplateData = {
    tenantName: event.tenant.name,
    tenantCode: event.tenant.code,
    occurredAt: event.occurredAt,
    actor: event.actor,
    ...("reason" in event && event.reason !== undefined ? { reason: event.reason } : {})
  }
  switch (event._tag) {
    case "TenantCreated":
      return [email(event, "welcome", NotificationTemplates.welcomeEmail(data, contact.locale))]
    case "TenantActivated":
      if (contact.phone === undefined) {
        return [email(event, "activated", NotificationTemplates.activatedEmail(data, contact.locale))]
      }
      return [{
        channel: "sms",
        template: "activated",
        event,
        message: {
          key: keyOf(event.eventId, "sms", contact.phone),
          to: contact.phone,
          text: NotificationTemplates.activatedSms(data, contact.locale)
        }
      }]
    case "TenantSuspended":
      return [email(event, "suspended", NotificationTemplates.suspendedEmail(data, contact.locale))]
    case "TenantDeleted":
      return [email(event, "deleted", NotificationTemplates.deletedEmail(data, contact.locale))]
    case "TenantRestored":
      return [email(event, "restored", NotificationTemplates.restoredEmail(data, contact.locale))]
    case "TenantUpdated":
      return []
  }
}

/**
 * A message the provider accepted, with its id (the Message-ID, or the gateway's id).
 *
 * @since 0.1.0
 * @category models
 */
export interface Sent {
  readonly notification: Notification
  readonly id: string
}

/**
 * A message that was not delivered, with the last attempt's error.
 *
 * @since 0.1.0
 * @category models
 */
export interface Failed {
  readonly notification: Notification
  readonly error: SendError
}

/**
 * What became of an event's messages.
 *
 * @since 0.1.0
 * @category models
 */
export interface Report {
  readonly event: TenantEvent
  readonly sent: ReadonlyArray<Sent>
  readonly failed: ReadonlyArray<Failed>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** One attempt at one message, for callers that keep their own retry state (the outbox relay). */
  readonly deliver: (notification: Notification) => Effect.Effect<Sent, SendError>
  /** Every message of the event, each with the retry policy; never fails, the report says what failed. */
  readonly notify: (event: TenantEvent) => Effect.Effect<Report>
}

/**
 * @since 0.1.0
 * @category services
 */
export class TenantNotifications
  extends Context.Tag("tenant-infra/TenantNotifications")<TenantNotifications, Service>()
{}

/**
 * Messages accepted by their provider, tagged with `channel` and `template`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const notificationsSent = Metric.counter("tenant_notifications_sent", {
  description: "Notification messages accepted by their provider",
  incremental: true
})

/**
 * Messages that failed after their last attempt, tagged with `channel`, `template` and `error`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const notificationsFailed = Metric.counter("tenant_notifications_failed", {
  description: "Notification messages that failed after their last attempt",
  incremental: true
})

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The retry policy `notify` applies to each message (default `SendRetry.defaults`). */
  readonly retry?: SendRetry.Options | undefined
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<Service, never, Mailer | SmsGateway> =>
  Effect.gen(function*() {
    const mailer = yield* Mailer
    const gateway = yield* SmsGateway
    const policy = options.retry ?? SendRetry.defaults

    const deliver = (notification: Notification): Effect.Effect<Sent, SendError> => {
      const send: Effect.Effect<Sent, SendError> = notification.channel === "email"
        ? Effect.map(mailer.send(notification.message), (sent) => ({ notification, id: sent.messageId }))
        : Effect.map(gateway.send(notification.message), (sent) => ({ notification, id: sent.id }))
      return Effect.withSpan(send, "TenantNotifications.deliver", {
        captureStackTrace: false,
        attributes: { channel: notification.channel, template: notification.template }
      })
    }

    const tagged = (metric: Metric.Metric.Counter<number>, notification: Notification) =>
      metric.pipe(Metric.tagged("channel", notification.channel), Metric.tagged("template", notification.template))

    const notify = (event: TenantEvent): Effect.Effect<Report> =>
      Effect.partition(
        notificationsFor(event),
        (notification) =>
          SendRetry.retry(notification.channel, policy)(deliver(notification)).pipe(
            Effect.tap(() => Metric.increment(tagged(notificationsSent, notification))),
            Effect.tapError((error) =>
              Metric.increment(Metric.tagged(tagged(notificationsFailed, notification), "error", error._tag))
            ),
            Effect.mapError((error): Failed => ({ notification, error }))
          ),
        { concurrency: "unbounded" }
      ).pipe(
        Effect.map(([failed, sent]) => ({ event, sent, failed })),
        Effect.withSpan("TenantNotifications.notify", {
          captureStackTrace: false,
          attributes: { "event.type": event._tag, "event.id": event.eventId }
        })
      )

    return { deliver, notify }
  })

/**
 * The service over whichever `Mailer` and `SmsGateway` are provided.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<TenantNotifications, never, Mailer | SmsGateway> =>
  Layer.effect(TenantNotifications, make(options))
