/**
 * The value-import graph of `src/`, read with TypeScript's parser: which of our modules each module loads at run
 * time (`import type` and type-only named imports left out, as the compiler erases them), and which packages.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import ts from "typescript"

export const SOURCE_ROOT = path.resolve(import.meta.dirname, "../../src")

export interface ImportGraph {
  /** Module (path relative to `src/`) to the modules of ours it loads. */
  readonly modules: ReadonlyMap<string, ReadonlyArray<string>>
  /** Module to the packages it loads. */
  readonly packages: ReadonlyMap<string, ReadonlyArray<string>>
}

const sourceFiles = (directory: string): Array<string> =>
  fs.readdirSync(directory, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(directory, entry.name)
    return entry.isDirectory() ? sourceFiles(full) : full.endsWith(".ts") ? [full] : []
  })

const erased = (statement: ts.ImportDeclaration | ts.ExportDeclaration): boolean => {
  if (ts.isExportDeclaration(statement)) {
    return statement.isTypeOnly ||
      (statement.exportClause !== undefined && ts.isNamedExports(statement.exportClause) &&
        statement.exportClause.elements.length > 0 &&
        statement.exportClause.elements.every((element) => element.isTypeOnly))
  }
  const clause = statement.importClause
  if (clause === undefined) return false
  if (clause.isTypeOnly) return true
  const bindings = clause.namedBindings
  return clause.name === undefined && bindings !== undefined && ts.isNamedImports(bindings) &&
    bindings.elements.length > 0 && bindings.elements.every((element) => element.isTypeOnly)
}

export const readImportGraph = (): ImportGraph => {
  const modules = new Map<string, Array<string>>()
  const packages = new Map<string, Array<string>>()
  for (const file of sourceFiles(SOURCE_ROOT)) {
    const source = ts.createSourceFile(file, fs.readFileSync(file, "utf8"), ts.ScriptTarget.Latest, false)
    const ours: Array<string> = []
    const theirs: Array<string> = []
    for (const statement of source.statements) {
      if (!ts.isImportDeclaration(statement) && !ts.isExportDeclaration(statement)) continue
      const specifier = statement.moduleSpecifier
      if (specifier === undefined || !ts.isStringLiteral(specifier) || erased(statement)) continue
      if (specifier.text.startsWith(".")) {
        const target = path.resolve(path.dirname(file), specifier.text.replace(/\.js$/, ".ts"))
        ours.push(path.relative(SOURCE_ROOT, target))
      } else {
        theirs.push(specifier.text)
      }
    }
    const name = path.relative(SOURCE_ROOT, file)
    modules.set(name, ours)
    packages.set(name, theirs)
  }
  return { modules, packages }
}

/** Every module `start` loads, itself included. */
export const reachable = (graph: ImportGraph, start: string): ReadonlySet<string> => {
  const seen = new Set<string>()
  const todo = [start]
  for (let next = todo.pop(); next !== undefined; next = todo.pop()) {
    if (seen.has(next)) continue
    seen.add(next)
    todo.push(...(graph.modules.get(next) ?? []))
  }
  return seen
}

/** The cycles of the graph: its strongly connected components of more than one module, or one that loads itself. */
export const cycles = (graph: ImportGraph): ReadonlyArray<ReadonlyArray<string>> => {
  let counter = 0
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: Array<string> = []
  const onStack = new Set<string>()
  const found: Array<Array<string>> = []
  const visit = (module: string): void => {
    index.set(module, counter)
    low.set(module, counter)
    counter++
    stack.push(module)
    onStack.add(module)
    for (const next of graph.modules.get(module) ?? []) {
      if (!index.has(next)) {
        visit(next)
        low.set(module, Math.min(low.get(module) ?? 0, low.get(next) ?? 0))
      } else if (onStack.has(next)) {
        low.set(module, Math.min(low.get(module) ?? 0, index.get(next) ?? 0))
      }
    }
    if (low.get(module) !== index.get(module)) return
    const component: Array<string> = []
    for (let member = stack.pop(); member !== undefined; member = stack.pop()) {
      onStack.delete(member)
      component.push(member)
      if (member === module) break
    }
    if (component.length > 1 || (graph.modules.get(module) ?? []).includes(module)) found.push(component.sort())
  }
  for (const module of graph.modules.keys()) if (!index.has(module)) visit(module)
  return found
}
