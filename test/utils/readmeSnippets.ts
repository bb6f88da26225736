/**
 * The README's TypeScript blocks, type-checked the way a reader who pastes one into a file of their own would
 * see it: each block alone, as an ES module, importing `tenant-infra` and its public subpaths (mapped to `src/`
 * so the check needs no build) and the installed packages, under the project's compiler options.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import ts from "typescript"

export const PROJECT_ROOT = path.resolve(import.meta.dirname, "../..")

export interface Snippet {
  /** 1-based position among the README's ts blocks. */
  readonly index: number
  /** README line (1-based) of the block's first code line, just after the opening fence. */
  readonly firstLine: number
  /** Spaces stripped from each line (a block indented in a list), added back to reported columns. */
  readonly indent: number
  readonly code: string
  /** Set when the line before the fence is `<!-- not compiled: REASON -->`; "" when the reason is missing. */
  readonly skipReason: string | undefined
}

export interface SnippetError {
  readonly snippet: number | undefined
  /** README line, or undefined for a diagnostic that belongs to no snippet (compiler options, globals). */
  readonly line: number | undefined
  readonly column: number | undefined
  readonly code: number
  readonly message: string
}

const fenceOpen = /^( {0,3})(`{3,}|~{3,})\s*([^\s`]*)/
const optOut = /^\s*<!--\s*not compiled\b\s*:?\s*(.*?)\s*-->\s*$/
const tsLanguages = new Set(["ts", "typescript"])

/** Every fenced block tagged `ts` or `typescript`, in order; other fenced blocks are stepped over whole. */
export const extractSnippets = (markdown: string): ReadonlyArray<Snippet> => {
  const lines = markdown.split(/\r?\n/)
  const snippets: Array<Snippet> = []
  let i = 0
  while (i < lines.length) {
    const open = fenceOpen.exec(lines[i] ?? "")
    if (open === null) {
      i++
      continue
    }
    const [, indent = "", fence = "", language = ""] = open
    const close = new RegExp(`^ {0,3}${fence[0] === "`" ? "`" : "~"}{${fence.length},}\\s*$`)
    const body: Array<string> = []
    let j = i + 1
    while (j < lines.length && !close.test(lines[j] ?? "")) {
      const line = lines[j] ?? ""
      // CommonMark: content lines lose up to as much indentation as the opening fence had.
      body.push(line.replace(new RegExp(`^ {0,${indent.length}}`), ""))
      j++
    }
    if (tsLanguages.has(language.toLowerCase())) {
      const marker = i > 0 ? optOut.exec(lines[i - 1] ?? "") : null
      snippets.push({
        index: snippets.length + 1,
        firstLine: i + 2,
        indent: indent.length,
        code: body.join("\n"),
        skipReason: marker === null ? undefined : marker[1] ?? ""
      })
    }
    i = j + 1
  }
  return snippets
}

const isModule = (code: string): boolean => /^\s*(import|export)\b/m.test(code)

/**
 * `tenant-infra` and each public subpath of the package's `exports` map, pointed at its source, so a snippet
 * importing a module the package does not export fails here as it would for a user.
 */
const packagePaths = (root: string): Record<string, Array<string>> => {
  const manifest = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as {
    readonly name: string
    readonly exports: Record<string, string | { readonly types?: string }>
  }
  const paths: Record<string, Array<string>> = {}
  for (const [key, target] of Object.entries(manifest.exports)) {
    const types = typeof target === "string" ? undefined : target.types
    const source = types?.match(/^\.\/dist\/(.+)\.d\.ts$/)?.[1]
    if (source === undefined) continue
    paths[key === "." ? manifest.name : `${manifest.name}/${key.slice(2)}`] = [`./src/${source}.ts`]
  }
  return paths
}

const compilerOptions = (root: string): ts.CompilerOptions => {
  const configPath = path.join(root, "tsconfig.json")
  const read = ts.readConfigFile(configPath, (file) => ts.sys.readFile(file))
  if (read.error !== undefined) {
    throw new Error(ts.flattenDiagnosticMessageText(read.error.messageText, "\n"))
  }
  const parsed = ts.parseJsonConfigFileContent(read.config, ts.sys, root, undefined, configPath)
  return {
    ...parsed.options,
    noEmit: true,
    // A snippet may declare things only for the reader to see.
    noUnusedLocals: false,
    noUnusedParameters: false,
    baseUrl: root,
    paths: packagePaths(root),
    typeRoots: [path.join(root, "node_modules", "@types")]
  }
}

/**
 * Type-checks the snippets together in one program, each in its own file, and returns every error with its
 * README line. The files live in a fresh directory under `node_modules/.cache` (so that bare imports resolve
 * from the project's `node_modules` exactly as in a user's project), removed before returning.
 */
export const typeCheckSnippets = (
  snippets: ReadonlyArray<Snippet>,
  root: string = PROJECT_ROOT
): ReadonlyArray<SnippetError> => {
  const cache = path.join(root, "node_modules", ".cache", "readme-snippets")
  fs.mkdirSync(cache, { recursive: true })
  const directory = fs.mkdtempSync(path.join(cache, "run-"))
  try {
    // NodeNext takes a .ts file's module format from the nearest package.json.
    fs.writeFileSync(path.join(directory, "package.json"), JSON.stringify({ type: "module", private: true }))
    const files = new Map<string, Snippet>()
    for (const snippet of snippets) {
      const file = path.join(directory, `snippet-${snippet.index}.ts`)
      fs.writeFileSync(file, isModule(snippet.code) ? `${snippet.code}\n` : `${snippet.code}\nexport {}\n`)
      files.set(path.resolve(file), snippet)
    }
    const program = ts.createProgram({ rootNames: [...files.keys()], options: compilerOptions(root) })
    const errors: Array<SnippetError> = []
    const collect = (diagnostic: ts.Diagnostic): void => {
      if (diagnostic.category !== ts.DiagnosticCategory.Error) return
      const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n")
      const snippet = diagnostic.file === undefined ? undefined : files.get(path.resolve(diagnostic.file.fileName))
      if (diagnostic.file === undefined || snippet === undefined || diagnostic.start === undefined) {
        errors.push({ snippet: snippet?.index, line: undefined, column: undefined, code: diagnostic.code, message })
        return
      }
      const position = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start)
      errors.push({
        snippet: snippet.index,
        line: snippet.firstLine + position.line,
        column: position.character + 1 + snippet.indent,
        code: diagnostic.code,
        message
      })
    }
    program.getOptionsDiagnostics().forEach(collect)
    program.getGlobalDiagnostics().forEach(collect)
    for (const file of files.keys()) {
      const source = program.getSourceFile(file)
      if (source === undefined) throw new Error(`the program did not load ${file}`)
      program.getSyntacticDiagnostics(source).forEach(collect)
      program.getSemanticDiagnostics(source).forEach(collect)
    }
    return errors
  } finally {
    fs.rmSync(directory, { recursive: true, force: true })
    try {
      // Only when empty: another run may be using it.
      fs.rmdirSync(cache)
    } catch {
      // not empty, or already gone
    }
  }
}

/** One line per error, `README.md:LINE:COLUMN`, so an editor or a reader jumps straight to it. */
export const formatErrors = (readmeName: string, errors: ReadonlyArray<SnippetError>): string =>
  errors.map((error) => {
    const where = error.line === undefined
      ? `${readmeName}${error.snippet === undefined ? "" : ` (snippet ${error.snippet})`}`
      : `${readmeName}:${error.line}:${error.column} (snippet ${error.snippet})`
    return `${where}: TS${error.code}: ${error.message.replace(/\n/g, "\n    ")}`
  }).join("\n")
