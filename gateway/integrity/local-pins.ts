import { toolDigest } from "../policy/index.js";
import type { Clock } from "../shared/clock.js";
import { checkActor } from "./binding.js";
import { checkPin, driftOf } from "./definition.js";
import { IntegrityError } from "./errors.js";
import { deleteIn, listIn, setIn, type IntegrityFile } from "./file-doc.js";
import type { DriftRecord, PinStore, ToolDefinition, ToolPin } from "./types.js";

/** Pins in the local integrity file (file-doc.ts): one gateway and the CLI on one host. */
export class LocalPinStore implements PinStore {
  readonly shared = false;

  constructor(
    private readonly file: IntegrityFile,
    private readonly clock: Pick<Clock, "now">,
  ) {}

  async get(server: string, tool: string): Promise<ToolPin | null> {
    return this.file.read().pins.get(server)?.get(tool) ?? null;
  }

  async pinFirstSeen(pin: ToolPin): Promise<ToolPin> {
    return (await this.pinAllFirstSeen([pin]))[0]!;
  }

  async pinAllFirstSeen(pins: readonly ToolPin[]): Promise<ToolPin[]> {
    if (pins.length === 0) return [];
    for (const pin of pins) checkPin(pin);
    return this.file.update((doc) =>
      pins.map((pin) => {
        const current = doc.pins.get(pin.server)?.get(pin.tool);
        if (current) return current;
        setIn(doc.pins, pin.server, pin.tool, { ...pin });
        return doc.pins.get(pin.server)!.get(pin.tool)!;
      }),
    );
  }

  async approve(server: string, tool: string, definition: ToolDefinition, operator: string): Promise<ToolPin> {
    const name = checkActor(operator, "operator");
    const digest = definitionDigest(tool, definition);
    return this.file.update((doc) => {
      const drift = doc.drifts.get(server)?.get(tool);
      if (!drift) throw noDriftError(server, tool);
      if (drift.digest !== digest) throw driftChangedError(server, tool, digest, drift.digest);
      const pin: ToolPin = { server, tool, digest, definition: drift.definition, pinnedAt: new Date(this.clock.now()).toISOString(), pinnedBy: `operator:${name}` };
      setIn(doc.pins, server, tool, pin);
      deleteIn(doc.drifts, server, tool);
      return doc.pins.get(server)!.get(tool)!;
    });
  }

  async revoke(server: string, tool: string): Promise<boolean> {
    return this.file.update((doc) => {
      const pinned = deleteIn(doc.pins, server, tool);
      return deleteIn(doc.drifts, server, tool) || pinned;
    });
  }

  async list(server?: string): Promise<ToolPin[]> {
    return listIn(this.file.read().pins, server);
  }

  async noteDrift(server: string, tool: string, definition: ToolDefinition): Promise<DriftRecord | null> {
    const digest = definitionDigest(tool, definition);
    // Seen before (each listing of a drifted tool lands here): answered from memory, no write.
    const known = this.file.read().drifts.get(server)?.get(tool);
    if (known?.digest === digest) return known;
    return this.file.update((doc) => {
      const pin = doc.pins.get(server)?.get(tool);
      if (!pin || pin.digest === digest) return null;
      const current = doc.drifts.get(server)?.get(tool);
      if (current?.digest === digest) return current;
      const drift = driftOf(pin, digest, definition, this.clock.now());
      setIn(doc.drifts, server, tool, JSON.parse(JSON.stringify(drift)) as DriftRecord);
      return doc.drifts.get(server)!.get(tool)!;
    });
  }

  async getDrift(server: string, tool: string): Promise<DriftRecord | null> {
    return this.file.read().drifts.get(server)?.get(tool) ?? null;
  }

  async drifts(server?: string): Promise<DriftRecord[]> {
    return listIn(this.file.read().drifts, server);
  }

  async clearDrift(server: string, tool: string): Promise<boolean> {
    if (!this.file.read().drifts.get(server)?.has(tool)) return false;
    return this.file.update((doc) => deleteIn(doc.drifts, server, tool));
  }
}

/** The digest of a definition given for `tool` (refused when it is another tool's). */
export function definitionDigest(tool: string, definition: ToolDefinition): string {
  if (definition.name !== tool) throw new IntegrityError("invalid_argument", `the definition given for tool "${tool}" is of "${definition.name}"`);
  return toolDigest(definition);
}

export function noDriftError(server: string, tool: string): IntegrityError {
  return new IntegrityError("no_drift_seen", `${server}/${tool}: no drifted definition has been seen, so there is nothing to approve (tools list shows drifted tools; revoke drops a pin)`);
}

export function driftChangedError(server: string, tool: string, approving: string, seen: string): IntegrityError {
  return new IntegrityError("drift_changed", `${server}/${tool}: the drifted definition on record is now ${seen}, not ${approving}; review it with tools list and approve again`);
}
