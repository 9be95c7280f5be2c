/**
 * GET /readyz (DESIGN.md contract 6): ready only when this replica can decide and record a
 * request. Each check names itself and, when failing, why; a balancer takes the replica out of
 * rotation on 503 while /healthz (liveness) stays 200.
 */
export interface ReadinessCheck {
  name: string;
  /** Resolves null when the check passes, else the reason. */
  run(): Promise<string | null> | string | null;
}

export interface Readiness {
  ready: boolean;
  checks: Record<string, { ok: boolean; reason?: string }>;
}

/** Longest a check may take before it counts as failing (a hung broker must not hang the probe). */
const CHECK_TIMEOUT_MS = 1000;

export async function readiness(checks: readonly ReadinessCheck[]): Promise<Readiness> {
  const results = await Promise.all(
    checks.map(async (c) => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<string>((r) => (timer = setTimeout(() => r(`no answer within ${CHECK_TIMEOUT_MS} ms`), CHECK_TIMEOUT_MS)));
      try {
        const reason = await Promise.race([Promise.resolve().then(() => c.run()), timeout]);
        return [c.name, reason === null ? { ok: true } : { ok: false, reason }] as const;
      } catch (err) {
        return [c.name, { ok: false, reason: err instanceof Error ? err.message : String(err) }] as const;
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  const out: Readiness["checks"] = Object.fromEntries(results);
  return { ready: results.every(([, r]) => r.ok), checks: out };
}
