import type { AddressInfo } from "node:net";
import { createServer } from "node:http";
import express from "express";
import { JwtVerifier } from "../../gateway/auth/index.js";
import { consoleRouter, roleAuthorizer, type ConsoleRouterOptions } from "../../gateway/console/index.js";
import { startFakeIdp, type FakeIdp } from "../fakes/jwks.js";

/** The role the console tests' operators hold. */
export const CONSOLE_ROLE = "portcullis-operator";

export interface ConsoleApp {
  url: string;
  close(): Promise<void>;
}

/**
 * The console router mounted on a bare Express app on 127.0.0.1 (random port), behind the same
 * catch-all 404 the gateway's app ends with.
 */
export async function startConsoleApp(opts: ConsoleRouterOptions): Promise<ConsoleApp> {
  const app = express();
  app.disable("x-powered-by");
  app.use(consoleRouter(opts));
  app.use((_req, res) => void res.status(404).json({ error: "not_found" }));
  const server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      server.closeAllConnections(); // open SSE streams would hold close() forever
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A fake IdP and the authorize function the gateway would build on it (real JWT verification). */
export async function operatorIdentity(): Promise<{ idp: FakeIdp; authorize: ConsoleRouterOptions["authorize"]; operatorToken: string; agentToken: string }> {
  const idp = await startFakeIdp();
  const verifier = new JwtVerifier({ issuer: idp.issuer, audience: idp.audience, jwksUri: idp.jwksUri, algorithms: ["RS256"] });
  return {
    idp,
    authorize: roleAuthorizer(verifier, [CONSOLE_ROLE]),
    operatorToken: idp.mint({ sub: "ops-carol", roles: [CONSOLE_ROLE], exp: Math.floor(Date.now() / 1000) + 3600 }),
    agentToken: idp.mint({ sub: "alice", roles: ["analyst"], exp: Math.floor(Date.now() / 1000) + 3600 }),
  };
}
