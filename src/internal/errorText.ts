/**
 * An error as one line of text for people: its message followed by its causes' (a driver's error is usually the
 * useful part), without stacks. A cause whose message the line already holds is left out: errors often quote
 * their cause ("Connection timed out" twice over otherwise).
 */
import * as Predicate from "effect/Predicate"

const messageOf = (error: unknown): string => {
  if (!Predicate.isObject(error)) return String(error)
  const message = Reflect.get(error, "message")
  if (Predicate.isString(message) && message !== "") return message
  const code = Reflect.get(error, "code")
  if (Predicate.isString(code)) return code
  const tag = Reflect.get(error, "_tag")
  return Predicate.isString(tag) ? tag : String(error)
}

/** `error`'s message and up to three causes' deep, joined by `: `. */
export const causeChain = (error: unknown): string => {
  const parts: Array<string> = []
  let current: unknown = error
  for (let depth = 0; depth < 4 && current !== undefined; depth++) {
    const message = messageOf(current)
    if (!parts.some((part) => part.includes(message))) parts.push(message)
    current = Predicate.isObject(current) ? Reflect.get(current, "cause") : undefined
  }
  return parts.join(": ")
}
