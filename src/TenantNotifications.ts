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
 * recognisable repeats, never new messages. Which messages an event calls for and their keys
 * ({@link envelopesFor}) are a function of the event alone; texts are rendered only when a message is built to be
 * sent ({@link notificationOf}), so no template change can change a key.
 *
 * Messages do not name who made the change (`actor`, an internal user id or service name) unless the layer is made
 * with `showActor: true` ({@link RenderOptions}); the option changes texts only, never which messages go out or
 * their keys.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Rules from "./internal/notificationRules.js"
import { Mailer } from "./Mailer.js"
import type { EmailMessage } from "./Mailer.js"
import * as NotificationTemplates from "./NotificationTemplates.js"
import type { Channel, SendError } from "./SendError.js"
import * as SendRetry from "./SendRetry.js"
import type { SmsMessage } from "./SmsGateway.js"
import { SmsGateway } from "./SmsGateway.js"
import type { Locale } from "./Tenant.js"
import type { TenantEvent } from "./TenantEvent.js"

/**
 * The template a message was written from.
 *
 * @since 0.1.0
 * @category models
 */
export type Template = NotificationTemplates.Template

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
 * Who gets which e-mail of an event, and under which key, without its text.
 *
 * @since 0.1.0
 * @category models
 */
export interface EmailEnvelope {
  readonly channel: "email"
  readonly template: Template
  /** `<event id>:email:<recipient>` (see {@link keyOf}). */
  readonly key: string
  readonly recipient: string
}

/**
 * Who gets which SMS of an event, and under which key, without its text.
 *
 * @since 0.1.0
 * @category models
 */
export interface SmsEnvelope {
  readonly channel: "sms"
  readonly template: NotificationTemplates.SmsTemplate
  /** `<event id>:sms:<recipient>` (see {@link keyOf}). */
  readonly key: string
  readonly recipient: string
}

/**
 * One message an event calls for, as the delivery ledger stores it: channel, template, recipient and key.
 *
 * @since 0.1.0
 * @category models
 */
export type Envelope = EmailEnvelope | SmsEnvelope

/**
 * The key of a message: the same event and recipient always give the same key. Delivery ledgers hold these
 * keys, so the format never changes: `<event id>:<channel>:<recipient in lower case>`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const keyOf: (eventId: string, channel: Channel, recipient: string) => string = Rules.keyOf

/**
 * The messages an event calls for (channel, template, recipient and key), without rendering any: a pure
 * function of the event, which no template change can alter.
 *
 * @since 0.1.0
 * @category constructors
 */
export const envelopesFor: (event: TenantEvent) => ReadonlyArray<Envelope> = Rules.envelopesFor

/**
 * How messages are rendered.
 *
 * @since 0.1.0
 * @category models
 */
export interface RenderOptions {
  /**
   * Whether e-mails name who made the change (the event's `actor`: a user id, a service name or `system`).
   * Default `false`: actors are internal names, which customers should not see unless the application chooses
   * so. Texts only; which messages go out and their keys never depend on it.
   */
  readonly showActor?: boolean | undefined
  /**
   * The application's own templates, tried first: a function that answers `undefined` leaves that message to
   * the package's template. Escape what goes into HTML with `NotificationTemplates.html` (a tagged template that
   * escapes every value). Which messages go out and their keys never depend on them.
   */
  readonly templates?: CustomTemplates | undefined
}

/**
 * Templates an application renders itself, by channel; each gets the template's name, the event's data (with the
 * actor only under `showActor`) and the recipient's locale.
 *
 * @since 0.2.0
 * @category models
 */
export interface CustomTemplates {
  readonly email?:
    | ((template: Template, data: TemplateData, locale: Locale) => NotificationTemplates.RenderedEmail | undefined)
    | undefined
  readonly sms?:
    | ((template: NotificationTemplates.SmsTemplate, data: TemplateData, locale: Locale) => string | undefined)
    | undefined
}

/**
 * What a template knows of an event.
 *
 * @since 0.2.0
 * @category models
 */
export type TemplateData = NotificationTemplates.TemplateData

const dataOf = (event: TenantEvent, options: RenderOptions): NotificationTemplates.TemplateData => ({
  tenantName: event.tenant.name,
  tenantCode: event.tenant.code,
  occurredAt: event.occurredAt,
  // Left out, not blanked, so that no template can show it by mistake when the option is off.
  ...((options.showActor ?? false) ? { actor: event.actor } : {}),
  ...("reason" in event && event.reason !== undefined ? { reason: event.reason } : {})
})

/**
 * One message of `event` (one of its {@link envelopesFor}), rendered in the contact's locale: for a sender that
 * renders at send time only the message it sends. The actor is named only with `showActor: true`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const notificationOf = (event: TenantEvent, envelope: Envelope, options: RenderOptions = {}): Notification => {
  const { locale } = event.tenant.contact
  const { key, recipient: to } = envelope
  const data = dataOf(event, options)
  switch (envelope.channel) {
    case "email": {
      const rendered = options.templates?.email?.(envelope.template, data, locale) ??
        NotificationTemplates.render("email", envelope.template, data, locale)
      return { channel: "email", template: envelope.template, event, message: { key, to, ...rendered } }
    }
    case "sms": {
      const text = options.templates?.sms?.(envelope.template, data, locale) ??
        NotificationTemplates.render("sms", envelope.template, data, locale)
      return { channel: "sms", template: envelope.template, event, message: { key, to, text } }
    }
  }
}

/**
 * The messages an event calls for, rendered with `options` and addressed; pure.
 *
 * @example
 * ```ts
 * import * as TenantNotifications from "tenant-infra/TenantNotifications"
 * import type { TenantEvent } from "tenant-infra/TenantEvent"
 *
 * declare const events: ReadonlyArray<TenantEvent>
 * const withActors = events.flatMap(TenantNotifications.notificationsWith({ showActor: true }))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const notificationsWith = (options: RenderOptions) => (event: TenantEvent): ReadonlyArray<Notification> =>
  envelopesFor(event).map((envelope) => notificationOf(event, envelope, options))

/**
 * The messages an event calls for, rendered with the default options (no actor) and addressed; pure. One
 * argument, so that `events.flatMap(notificationsFor)` works; {@link notificationsWith} takes options.
 *
 * @since 0.1.0
 * @category constructors
 */
export const notificationsFor = (event: TenantEvent): ReadonlyArray<Notification> => notificationsWith({})(event)

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
  /**
   * One message of an event, rendered with this service's options (`showActor`): what a sender that renders at
   * send time (the outbox relay) calls, so that the layer's options reach its messages.
   */
  readonly notificationOf: (event: TenantEvent, envelope: Envelope) => Notification
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
export interface Options extends RenderOptions {
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
    const rendering: RenderOptions = { showActor: options.showActor, templates: options.templates }

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
        notificationsWith(rendering)(event),
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

    return {
      notificationOf: (event: TenantEvent, envelope: Envelope) => notificationOf(event, envelope, rendering),
      deliver,
      notify
    }
  })

/**
 * The service over whichever `Mailer` and `SmsGateway` are provided.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<TenantNotifications, never, Mailer | SmsGateway> =>
  Layer.effect(TenantNotifications, make(options))
