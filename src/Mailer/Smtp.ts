/**
 * The mailer over SMTP, with nodemailer's connections in a pool of our own.
 *
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import * as MailerSmtp from "tenant-infra/Mailer/Smtp"
 *
 * const mailer = MailerSmtp.layer({ url: Redacted.make("smtp://127.0.0.1:2525"), from: "noreply@acme.test" })
 * ```
 *
 * @since 0.2.0
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"

import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { makeSmtpMailer } from "../internal/smtpMailer.js"
import { Mailer } from "../Mailer.js"
import type { Misconfigured } from "../SendError.js"

/**
 * How the mailer reaches the server. Only `url` and `from` are required.
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
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
 * after `maxMessagesPerConnection` messages or when the server closes them, and closed with the scope.
 * Each send is one attempt whose failure says how far it got: a drop before the body is `Transient`, a drop after
 * the whole body and before the reply is `Ambiguous` (it is never resent behind the caller's back). Fails
 * with `Misconfigured` when the URL or the sender is unusable (no address, or a character or encoded word that
 * `Mailer.checkHeaders` refuses).
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Mailer["Type"], Misconfigured, Scope.Scope> =>
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

/**
 * The mailer of {@link make}, closed with the layer.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<Mailer, Misconfigured> => Layer.scoped(Mailer, make(options))

/**
 * {@link layer} with its options read from `Config`. The environment variables of `TenantInfra` (`SMTP_URL`,
 * `MAIL_FROM`, ...) are one such configuration.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config.Wrap<Options>
): Layer.Layer<Mailer, ConfigError.ConfigError | Misconfigured> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(options), layer))
