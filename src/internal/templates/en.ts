/**
 * The English copy of every notification.
 */
import type { LocaleCopy, Words } from "./copy.js"
import { standardBody } from "./copy.js"

const words: Words = {
  colon: ": ",
  greeting: () => "Hello,",
  name: "Tenant name",
  code: "Tenant code",
  actor: "By",
  reason: "Reason",
  noReason: "No reason given",
  footer: "This message was sent automatically."
}

export const copy: LocaleCopy = {
  words,
  emails: {
    welcome: {
      subject: (name) => `Welcome to our platform: ${name}`,
      body: (values) =>
        standardBody(words, values, {
          message: "Welcome to our platform. Your tenant has been created and is awaiting activation; " +
            "you can start using it once it has been activated.",
          timeLabel: "Created (UTC)",
          reason: "never"
        })
    },
    activated: {
      subject: (name) => `Your tenant ${name} is now active`,
      body: (values) =>
        standardBody(words, values, {
          message: `Your tenant ${values.name} has been activated and is ready to use.`,
          timeLabel: "Activated (UTC)",
          reason: "whenGiven"
        })
    },
    suspended: {
      subject: (name) => `Your tenant ${name} has been suspended`,
      body: (values) =>
        standardBody(words, values, {
          message: `Your tenant ${values.name} has been suspended and cannot be used while it is suspended. ` +
            "If you have questions, contact your platform administrator.",
          timeLabel: "Suspended (UTC)",
          reason: "always"
        })
    },
    deleted: {
      subject: (name) => `Your tenant ${name} has been deleted`,
      body: (values) =>
        standardBody(words, values, {
          message: `Your tenant ${values.name} has been deleted. ` +
            "If you did not expect this, contact your platform administrator as soon as possible.",
          timeLabel: "Deleted (UTC)",
          reason: "always"
        })
    },
    restored: {
      subject: (name) => `Your tenant ${name} has been restored`,
      body: (values) =>
        standardBody(words, values, {
          message: `Your tenant ${values.name} has been restored. It remains suspended until it is activated again.`,
          timeLabel: "Restored (UTC)",
          reason: "whenGiven"
        })
    }
  },
  sms: {
    activated: (name) => `Your tenant ${name} is now active and ready to use.`
  }
}
