import { BundleError } from "./errors.js";

/**
 * Tool pins named in policy data (contract 7): `data.portcullis.tool_pins.SERVER.TOOL` is the
 * digest (`sha256:` + 64 hex) the tool must have. Such a pin is in force instead of the first
 * digest seen, and changes only with a new signed bundle: a pin that goes through review like the
 * policy itself. Server → tool → digest.
 */
export type ToolPinsFromData = ReadonlyMap<string, ReadonlyMap<string, string>>;

const DIGEST = /^sha256:[0-9a-f]{64}$/;
export const NO_DATA_PINS: ToolPinsFromData = new Map();

/** The pins of a bundle's data; a malformed entry refuses the bundle, naming it. */
export function toolPinsOf(data: unknown, bundle: string): ToolPinsFromData {
  const portcullis = isRecord(data) ? data.portcullis : undefined;
  const pins = isRecord(portcullis) ? portcullis.tool_pins : undefined;
  if (pins === undefined) return NO_DATA_PINS;
  const bad = (path: string, why: string) => new BundleError("bundle_malformed", `data.portcullis.tool_pins${path} ${why}`, { bundle, file: "data.json" });
  if (!isRecord(pins)) throw bad("", "must be an object of servers");
  const out = new Map<string, Map<string, string>>();
  for (const [server, tools] of Object.entries(pins)) {
    if (!isRecord(tools)) throw bad(`.${server}`, "must be an object of tool names");
    const byTool = new Map<string, string>();
    for (const [tool, digest] of Object.entries(tools)) {
      if (typeof digest !== "string" || !DIGEST.test(digest)) throw bad(`.${server}.${tool}`, "must be a digest: sha256: and 64 lowercase hex (portcullis tools list shows each tool's)");
      byTool.set(tool, digest);
    }
    out.set(server, byTool);
  }
  return out;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
