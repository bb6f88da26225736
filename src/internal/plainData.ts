/**
 * The first step of decoding untrusted input: a bounded copy of it as plain data, before any schema sees it.
 *
 * A schema walks its input recursively and formats failing values whole, so hostile shapes reach it as crashes
 * or as seconds of work: 100,000 nested arrays overflow the stack, a getter or a proxy throws from inside the
 * decoder, a cycle never ends, a 10 MB string is echoed into the error. The copy reads every property once (a
 * getter cannot answer one thing to the check and another to the use), within fixed limits on depth, size and
 * text length that no valid input comes near, and refuses everything else with the path where it stopped.
 */
import * as Either from "effect/Either"

/** Far above anything valid (a tenant nests 2 levels, a setting value is at most 2,000 characters). */
export const limits = {
  depth: 32,
  keys: 1_000,
  items: 1_000,
  values: 10_000,
  textLength: 100_000
} as const

/** Where the copy stopped, and why, in words a caller can show. */
export interface Refusal {
  readonly path: ReadonlyArray<PropertyKey>
  readonly message: string
}

class Refused {
  constructor(readonly path: ReadonlyArray<PropertyKey>, readonly message: string) {}
}

/**
 * Options of {@link copy}. `dates`: `Date` objects are copied (a list query's time range); elsewhere a date is
 * refused like any other object that is not plain data.
 */
export interface CopyOptions {
  readonly dates?: boolean | undefined
}

const kindOf = (value: object): string => {
  const tag = Object.prototype.toString.call(value).slice(8, -1)
  return tag === "Object" ? "an instance of a class" : `a ${tag}`
}

/**
 * A copy of `input` made only of strings, numbers, booleans, `null`, `undefined`, arrays and objects whose
 * prototype is `Object.prototype` or `null` (and dates when asked for), or the {@link Refusal} that says why not.
 * Other primitives (symbols, bigints) are copied as they are, for the schema to refuse by type.
 */
export const copy = (input: unknown, options?: CopyOptions): Either.Either<unknown, Refusal> => {
  const dates = options?.dates === true
  const path: Array<PropertyKey> = []
  const ancestors: Array<object> = []
  let values = 0

  const refuse = (message: string): never => {
    throw new Refused([...path], message)
  }

  const read = (from: object, key: PropertyKey): unknown => {
    path.push(key)
    let value: unknown
    try {
      value = (from as Record<PropertyKey, unknown>)[key]
    } catch {
      refuse("could not be read")
    }
    const copied = walk(value)
    path.pop()
    return copied
  }

  const walk = (value: unknown): unknown => {
    if (++values > limits.values) refuse(`holds more than ${limits.values} values, far more than any valid input`)
    switch (typeof value) {
      case "string":
        return value.length > limits.textLength
          ? refuse(`is ${value.length} characters long, far more than any field allows`)
          : value
      case "function":
        return refuse("must be data, not a function")
      case "object":
        return value === null ? null : walkObject(value)
      default:
        return value
    }
  }

  const walkObject = (value: object): unknown => {
    if (path.length >= limits.depth) {
      refuse(`nests more than ${limits.depth} levels deep, far more than any valid input`)
    }
    if (ancestors.includes(value)) refuse("refers to itself")
    ancestors.push(value)
    let copied: unknown
    try {
      if (Array.isArray(value)) {
        const length = value.length
        if (length > limits.items) refuse(`is a list of ${length} items, far more than any field allows`)
        const items: Array<unknown> = []
        for (let i = 0; i < length; i++) items.push(read(value, i))
        copied = items
      } else if (value instanceof Date) {
        copied = dates ? new Date(value.getTime()) : refuse("must be plain data, not a Date")
      } else {
        const prototype: unknown = Object.getPrototypeOf(value)
        if (prototype !== Object.prototype && prototype !== null) refuse(`must be plain data, not ${kindOf(value)}`)
        const keys = Object.keys(value)
        if (keys.length > limits.keys) refuse(`has ${keys.length} keys, far more than any field allows`)
        const fields: Record<string, unknown> = {}
        for (const key of keys) {
          // Defined rather than assigned: a "__proto__" key from JSON.parse is an own field, not a prototype.
          Object.defineProperty(fields, key, {
            value: read(value, key),
            enumerable: true,
            writable: true,
            configurable: true
          })
        }
        copied = fields
      }
    } catch (error) {
      if (error instanceof Refused) throw error
      // A proxy's trap or a revoked proxy threw while the object was being looked at.
      refuse("could not be read")
    }
    ancestors.pop()
    return copied
  }

  try {
    return Either.right(walk(input))
  } catch (error) {
    if (error instanceof Refused) return Either.left({ path: error.path, message: error.message })
    throw error
  }
}
