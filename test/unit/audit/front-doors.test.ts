import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

/**
 * The audit stage's two front doors (gateway/audit/README.md "Two front doors"): index.ts for the
 * running gateway, readers.ts for the offline tools. These checks keep the public face small and
 * the folder's internals private; they read the TypeScript sources, so type-only names count too.
 */
const ROOT = fileURLToPath(new URL("../../../../", import.meta.url));
const AUDIT_DIR = "gateway/audit";
/** Folders whose files may import the stage's modules directly: the stage itself and its white-box tests. */
const INTERNAL_DIRS = [AUDIT_DIR, "test/unit/audit"];
const SOURCE_DIRS = ["gateway", "test", "bench", "demo"];

const DOORS = [
  {
    door: "index.ts",
    names: [
      "APPROVAL_METHOD", "approvalStepEvent", "ApprovalStep", "AuditBacklog", "AuditBackpressureError", "AuditChain", "AuditContext", "AuditEvent", "AuditLog", "AuditLogger",
      "AuditLogOptions", "AuditOutcome", "AuditRecord", "AuditSink", "BUNDLE_REFUSED_METHOD", "bundleRefusedEvent",
      "ed25519PrivateKey", "JsonlFileSink", "JsonlFileSinkOptions", "KafkaClientLike", "KafkaHealth", "kafkaReadiness", "kafkaSecurityOptions",
      "KafkaSecurityOptions", "KafkaSink", "KafkaSinkOptions", "KafkaSinkStats", "KeyMatcher", "MemoryBacklog", "Outbox",
      "OutboxOptions", "sensitiveKeyMatcher", "toOcsf", "TruncationMarker",
    ],
  },
  {
    door: "readers.ts",
    names: ["DeadLetterLine", "ed25519PublicKey", "followJsonlFile", "followTopic", "readJsonlFile", "readTopicToEnd", "StoredRecord", "TopicSource", "verifyRecords", "VerifyReport"],
  },
];

function parse(path: string, text = readFileSync(resolve(ROOT, path), "utf8")): ts.SourceFile {
  return ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true);
}

/** The files under `dir` that mention the stage's folder at all (the rest cannot import it), parsed. */
function filesNamingAudit(dir: string): ts.SourceFile[] {
  return sourceFiles(dir).flatMap((path) => {
    const text = readFileSync(resolve(ROOT, path), "utf8");
    return text.includes("audit/") ? [parse(path, text)] : [];
  });
}

/** Every name a door exports; `export *` is refused because it widens the face without a trace. */
function exportedNames(path: string): string[] {
  const names: string[] = [];
  for (const st of parse(path).statements) {
    if (ts.isExportDeclaration(st)) {
      assert.ok(st.exportClause && ts.isNamedExports(st.exportClause), `${path}: "${st.getText()}" exports everything; name each export`);
      for (const e of st.exportClause.elements) names.push(e.name.text);
    } else if (ts.canHaveModifiers(st) && ts.getModifiers(st)?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword)) {
      assert.fail(`${path}: a door re-exports, it declares nothing ("${st.getText().slice(0, 60)}")`);
    }
  }
  return names;
}

const byName = (a: string, b: string) => a.localeCompare(b, "en", { sensitivity: "base" });

/** A module specifier with the line it is on, for every kind of import a file can make. */
interface Specifier {
  text: string;
  line: number;
  typeOnly: boolean;
}

function specifiers(file: ts.SourceFile): Specifier[] {
  const found: Specifier[] = [];
  const add = (node: ts.Node, lit: ts.Expression | undefined, typeOnly: boolean) => {
    if (lit && ts.isStringLiteral(lit)) found.push({ text: lit.text, line: file.getLineAndCharacterOfPosition(node.getStart()).line + 1, typeOnly });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      const c = node.importClause;
      // `import { type A, type B }` loads nothing at run time, the same as `import type`.
      const onlyTypes = c !== undefined && (c.isTypeOnly || (c.name === undefined && c.namedBindings !== undefined && ts.isNamedImports(c.namedBindings) && c.namedBindings.elements.length > 0 && c.namedBindings.elements.every((e) => e.isTypeOnly)));
      add(node, node.moduleSpecifier, onlyTypes);
    } else if (ts.isExportDeclaration(node)) {
      add(node, node.moduleSpecifier, node.isTypeOnly);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node, node.argument.literal, true);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      add(node, node.arguments[0], false);
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return found;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(resolve(ROOT, dir), { withFileTypes: true })) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory()) out.push(...sourceFiles(path));
    else if (e.name.endsWith(".ts") && !e.name.endsWith(".d.ts")) out.push(path);
  }
  return out;
}

/** Where a relative specifier lands, as a repo path ("gateway/audit/mask.js"); null for packages. */
function target(from: string, spec: string): string | null {
  if (!spec.startsWith(".")) return null;
  return relative(ROOT, resolve(ROOT, dirname(from), spec)).split("\\").join("/");
}

const inside = (path: string, dir: string) => path.startsWith(`${dir}/`);

describe("audit front doors (gateway/audit/index.ts, readers.ts)", () => {
  for (const { door, names } of DOORS) {
    it(`${door} exports exactly its listed names`, () => {
      assert.deepEqual(exportedNames(`${AUDIT_DIR}/${door}`).sort(byName), [...names].sort(byName));
    });
  }

  it("no name is exported by both doors", () => {
    const [running, readers] = DOORS.map((d) => new Set(exportedNames(`${AUDIT_DIR}/${d.door}`)));
    assert.deepEqual([...running!].filter((n) => readers!.has(n)), []);
  });

  it("the runtime values of each door are the listed names that are not types", async () => {
    const index = await import("../../../gateway/audit/index.js");
    const readers = await import("../../../gateway/audit/readers.js");
    assert.deepEqual(Object.keys(index).sort(byName), [
      "APPROVAL_METHOD", "approvalStepEvent", "AuditBackpressureError", "AuditChain", "AuditLog", "AuditRecord", "BUNDLE_REFUSED_METHOD", "bundleRefusedEvent",
      "ed25519PrivateKey", "JsonlFileSink", "kafkaReadiness", "kafkaSecurityOptions", "KafkaSink", "MemoryBacklog", "Outbox", "sensitiveKeyMatcher", "toOcsf",
    ]);
    assert.deepEqual(Object.keys(readers).sort(byName), ["ed25519PublicKey", "followJsonlFile", "followTopic", "readJsonlFile", "readTopicToEnd", "verifyRecords"]);
  });

  it("code outside gateway/audit/ and test/unit/audit/ imports the stage through a door only", () => {
    const doors = new Set(DOORS.map((d) => `${AUDIT_DIR}/${d.door.replace(/\.ts$/, ".js")}`));
    const deep: string[] = [];
    for (const file of SOURCE_DIRS.flatMap(filesNamingAudit)) {
      if (INTERNAL_DIRS.some((d) => inside(file.fileName, d))) continue;
      for (const s of specifiers(file)) {
        const to = target(file.fileName, s.text);
        if (to !== null && inside(to, AUDIT_DIR) && !doors.has(to)) deep.push(`${file.fileName}:${s.line} imports ${s.text}`);
      }
    }
    assert.deepEqual(deep.sort(), []);
  }).timeout(10_000); // reads every source file that names the folder

  // gateway/audit/chain.ts imports gateway/policy at run time (canonical JSON for the hash), so a
  // runtime import the other way would be an ESM cycle; types are erased and cannot make one.
  it("gateway/policy/ imports only types from gateway/audit/", () => {
    const runtime: string[] = [];
    for (const file of filesNamingAudit("gateway/policy")) {
      for (const s of specifiers(file)) {
        const to = target(file.fileName, s.text);
        if (to !== null && inside(to, AUDIT_DIR) && !s.typeOnly) runtime.push(`${file.fileName}:${s.line} imports ${s.text}`);
      }
    }
    assert.deepEqual(runtime, []);
  });
});
