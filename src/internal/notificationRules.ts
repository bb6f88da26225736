/**
 * Which messages an event calls for, and their keys: a pure function of the event that renders nothing, so that
 * storage (the delivery ledger) and the senders agree on keys whatever the templates say. Ledgers in production
 * hold these keys: `keyOf` must give the same string for the same message forever.
 */
import type { Channel } from "../SendError.js"
import type { TenantEvent } from "../TenantEvent.js"
import type { Envelope, Template } from "../TenantNotifications.js"

export const keyOf = (eventId: string, channel: Channel, recipient: string): string =>
  `${eventId}:${channel}:${recipient.toLowerCase()}`

export const envelopesFor = (event: TenantEvent): ReadonlyArray<Envelope> => {
  const { contact } = event.tenant
  const email = (template: Template): ReadonlyArray<Envelope> => [{
    channel: "email",
    template,
    key: keyOf(event.eventId, "email", contact.email),
    recipient: contact.email
  }]
  switch (event._tag) {
    case "TenantCreated":
      return email("welcome")
    case "TenantActivated":
      return contact.phone === undefined ? email("activated") : [{
        channel: "sms",
        template: "activated",
        key: keyOf(event.eventId, "sms", contact.phone),
        recipient: contact.phone
      }]
    case "TenantSuspended":
      return email("suspended")
    case "TenantDeleted":
      return email("deleted")
    case "TenantRestored":
      return email("restored")
    case "TenantUpdated":
      return []
  }
}
