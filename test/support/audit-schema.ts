/**
 * Validates audit events against docs/audit-event.schema.json (the schema SIEMs are given), so
 * every event a test produces proves the schema and the code agree.
 *
 *   assertAuditEvents(stack.auditEvents());   // throws naming the event and the schema errors
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Ajv2020 } from "ajv/dist/2020.js";
import type { ValidateFunction } from "ajv";

export const auditSchemaPath = fileURLToPath(new URL("../../../docs/audit-event.schema.json", import.meta.url));

let validator: ValidateFunction | null = null;

/** The compiled schema (strict mode: a schema keyword ajv does not know is an error). */
export function auditEventValidator(): ValidateFunction {
  if (!validator) {
    const ajv = new Ajv2020({ allErrors: true, strict: true, strictTypes: false });
    validator = ajv.compile(JSON.parse(readFileSync(auditSchemaPath, "utf8")) as object);
  }
  return validator;
}

/** Schema errors of one event, as readable lines; empty when it is valid. */
export function auditSchemaErrors(event: unknown): string[] {
  const validate = auditEventValidator();
  if (validate(event)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message ?? "invalid"}${e.params ? ` ${JSON.stringify(e.params)}` : ""}`);
}

/** Asserts every event validates; there must be at least one (an empty list proves nothing). */
export function assertAuditEvents(events: readonly unknown[]): void {
  assert.ok(events.length > 0, "no audit events to validate");
  for (const [i, e] of events.entries()) {
    const errors = auditSchemaErrors(e);
    const id = (e as { decision_id?: unknown } | null)?.decision_id;
    assert.deepEqual(errors, [], `audit event ${i} (${String(id)}) does not match docs/audit-event.schema.json`);
  }
}
