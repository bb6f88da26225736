import { createHash } from "node:crypto"

/** A short, stable digest of a message's key: the same event and recipient always give the same value. */
export const digestOf = (key: string): string => createHash("sha256").update(key).digest("hex").slice(0, 32)

/** The domain of an address (`noreply@acme.test` gives `acme.test`), for the right side of a Message-ID. */
export const domainOf = (address: string): string => {
  const at = address.lastIndexOf("@")
  const domain = at < 0 ? "" : address.slice(at + 1).replace(/>.*$/, "").trim().toLowerCase()
  return /^[a-z0-9.-]+$/.test(domain) ? domain : "tenant-infra.invalid"
}

/** Control characters (CR and LF above all) that must never reach a header. */
export const hasControlCharacters = (value: string): boolean => /[\x00-\x1f\x7f]/.test(value)
