/**
 * The port that sends one e-mail, and its layers: `layerSmtp` (nodemailer, pooled SMTP) and `layerMemory`
 * (keeps every message, for tests and the demo).
 *
 * Every message has a `key` naming what it is (an event and a recipient, say). The `Message-ID` is derived from
 * it, so a message sent twice carries the same id and the repeat is recognisable downstream.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import { checkHeaders, messageIdFor } from "./internal/messageRules.js"
import { makeSmtpMailer } from "./internal/smtpMailer.js"
import type { Misconfigured, SendError } from "./SendError.js"

/**
 * One e-mail. `from` defaults to the layer's sender (`MAIL_FROM`). Header values (`subject`, `to`, `from`,
 * `headers` and their names) must not hold line breaks or other control characters (Unicode Cc, C1 controls
 * such as U+0085 included), format characters (Cf: zero-width characters, bidirectional controls such as U+202E),
 * line or paragraph separators (U+2028, U+2029) or halves of surrogate pairs, and the addresses in `to` and
 * `from` no RFC 2047 encoded word (`=?utf-8?q?...?=@acme.test`): such a message fails as `Permanent`, on every
 * layer, before any server sees it.
 *
 * @since 0.1.0
 * @category models
 */
export interface EmailMessage {
  /** What this message is, e.g. `<event id>:email:<recipient>`; the same key gives the same Message-ID. */
  readonly key: string
  readonly to: string
  readonly subject: string
  readonly text: string
  readonly html: string
  readonly from?: string | undefined
  readonly headers?: Readonly<Record<string, string>> | undefined
}

/**
 * What the provider answered: the message's `Message-ID` and the server's reply.
 *
 * @since 0.1.0
 * @category models
 */
export interface SentEmail {
  readonly messageId: string
  readonly response: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** The address messages are sent from unless they say otherwise. */
  readonly from: string
  /** Sends one message, one attempt; retries are the caller's (see `SendRetry`). */
  readonly send: (message: EmailMessage) => Effect.Effect<SentEmail, SendError>
  /**
   * Proves that the server answers, sending nothing: `layerSmtp` opens a connection, waits for the greeting
   * (and the EHLO reply, and STARTTLS where it would use it), then QUITs, without logging in. For health checks
   * (see `InfraHealth`); a mailer that reaches no server has none.
   */
  readonly ping?: Effect.Effect<void, SendError> | undefined
}

/**
 * @since 0.1.0
 * @category services
 */
export class Mailer extends Context.Tag("tenant-infra/Mailer")<Mailer, Service>() {}

export {
  /**
   * Refuses a message whose header values hold line breaks or control, format or bidirectional characters, or
   * whose recipient or sender address holds an encoded word.
   *
   * @since 0.1.0
   * @category validation
   */
  checkHeaders,
  /**
   * The `Message-ID` a message with this key gets when sent from `from`: `<digest@from-domain>`.
   *
   * @since 0.1.0
   * @category constructors
   */
  messageIdFor
} from "./internal/messageRules.js"

/**
 * A message as the memory mailer kept it, with the sender and Message-ID it was given.
 *
 * @since 0.1.0
 * @category models
 */
export interface KeptEmail extends EmailMessage {
  readonly from: string
  readonly messageId: string
}

/**
 * What `layerMemory` sent, in order.
 *
 * @since 0.1.0
 * @category services
 */
export class MemoryMailer extends Context.Tag("tenant-infra/MemoryMailer")<MemoryMailer, {
  readonly sent: Effect.Effect<ReadonlyArray<KeptEmail>>
}>() {}

/**
 * A mailer that keeps every message instead of sending it, applying the same header checks as `layerSmtp`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (options: { readonly from?: string } = {}): Layer.Layer<Mailer | MemoryMailer> =>
  Layer.effectContext(Effect.gen(function*() {
    const from = options.from ?? "tenant-infra@localhost"
    const sent = yield* Ref.make<ReadonlyArray<KeptEmail>>([])
    const mailer: Service = {
      from,
      send: (message) =>
        Effect.gen(function*() {
          const sender = message.from ?? from
          yield* checkHeaders(message, sender)
          const messageId = messageIdFor(message.key, sender)
          yield* Ref.update(sent, (all) => [...all, { ...message, from: sender, messageId }])
          return { messageId, response: "250 kept in memory" }
        })
    }
    return Context.make(Mailer, mailer).pipe(Context.add(MemoryMailer, { sent: Ref.get(sent) }))
  }))

/**
 * How `layerSmtp` reaches the server. Only `url` and `from` are required.
 *
 * @since 0.1.0
 * @category models
 */
export interface SmtpOptions {
  /** `smtp://user:password@host:port` (STARTTLS when offered) or `smtps://...` (TLS); a secret. */
  readonly url: Redacted.Redacted
  /** The sender, `noreply@acme.test` or `Acme <noreply@acme.test>`. */
  readonly from: string
  /** Most open connections (default 5). */
  readonly maxConnections?: number | undefined
  /** Messages sent over one connection before it is replaced (default 100). */
  readonly maxMessagesPerConnection?: number | undefined
  /** To open the TCP connection (default 5 seconds; nodemailer's own default is 2 minutes). */
  readonly connectionTimeout?: Duration.DurationInput | undefined
  /** For the server's greeting (default 5 seconds). */
  readonly greetingTimeout?: Duration.DurationInput | undefined
  /** Of silence within a conversation (default 15 seconds; nodemailer's default is 10 minutes). */
  readonly socketTimeout?: Duration.DurationInput | undefined
  /** Check the server's TLS certificate (default true). */
  readonly rejectUnauthorized?: boolean | undefined
}

/**
 * Sends over SMTP with nodemailer: a pool of up to `maxConnections` connections, opened on demand, replaced
 * after `maxMessagesPerConnection` messages or when the server closes them, and closed with the layer's scope.
 * Each send is one attempt whose failure says how far it got: a drop before the body is `Transient`, a drop after
 * the whole body and before the reply is `Ambiguous` (it is never resent behind the caller's back). Fails to build
 * with `Misconfigured` when the URL or the sender is unusable (no address, or a character or encoded word that
 * {@link checkHeaders} refuses).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSmtp = (options: SmtpOptions): Layer.Layer<Mailer, Misconfigured> =>
  Layer.scoped(
    Mailer,
    makeSmtpMailer({
      url: options.url,
      from: options.from,
      maxConnections: options.maxConnections ?? 5,
      maxMessagesPerConnection: options.maxMessagesPerConnection ?? 100,
      connectionTimeout: options.connectionTimeout ?? Duration.seconds(5),
      greetingTimeout: options.greetingTimeout ?? Duration.seconds(5),
      socketTimeout: options.socketTimeout ?? Duration.seconds(15),
      rejectUnauthorized: options.rejectUnauthorized ?? true
    })
  )

/**
 * `layerSmtp` configured from the environment: `SMTP_URL` (a secret), `MAIL_FROM`, and optionally
 * `SMTP_MAX_CONNECTIONS` (default 5).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSmtpConfig: Layer.Layer<Mailer, ConfigError.ConfigError | Misconfigured> = Layer.unwrapEffect(
  Effect.map(
    Config.all({
      url: Config.redacted("SMTP_URL"),
      from: Config.string("MAIL_FROM"),
      maxConnections: Config.integer("SMTP_MAX_CONNECTIONS").pipe(Config.withDefault(5))
    }),
    layerSmtp
  )
)
