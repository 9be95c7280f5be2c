import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Logger } from "../shared/log.js";

/**
 * Graceful shutdown of the HTTP front: stop accepting, let in-flight calls finish (up to a
 * deadline), then cut what is left. Long-lived GET streams are not waited for: they carry no call
 * and would hold every shutdown to its deadline.
 */
export class InFlight {
  private count = 0;
  private draining = false;
  private idle: Array<() => void> = [];

  constructor(private readonly server: Server) {
    server.on("request", (req: IncomingMessage, res: ServerResponse) => {
      if (req.method === "GET") return;
      this.count++;
      // A keep-alive connection that answered during the drain is closed, not kept for a next call.
      if (this.draining && !res.headersSent) res.setHeader("connection", "close");
      res.once("close", () => {
        this.count--;
        if (this.draining) server.closeIdleConnections();
        if (this.count === 0) for (const resolve of this.idle.splice(0)) resolve();
      });
    });
  }

  get size(): number {
    return this.count;
  }

  /**
   * Stops accepting connections and waits until no call is in flight or `deadlineMs` passes.
   * Resolves with the number of calls still in flight at the deadline (0 when all finished).
   */
  async drain(deadlineMs: number, log: Logger): Promise<number> {
    this.draining = true;
    // server.close() stops listening and closes idle keep-alive connections.
    this.server.close();
    this.server.closeIdleConnections();
    if (this.count > 0) {
      log("info", "draining in-flight calls", { in_flight: this.count, deadline_ms: deadlineMs });
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.idle.push(resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, deadlineMs))),
      ]);
      clearTimeout(timer);
    }
    const left = this.count;
    if (left > 0) log("warn", "drain deadline passed; cutting in-flight calls", { in_flight: left });
    return left;
  }
}
