import type { Readable } from "node:stream";

/**
 * Reads a whole body as UTF-8 up to `limit` bytes, never buffering more: past the limit it stops
 * (`drain`: keep reading and discard, so an answer can still be sent on the connection, as for an
 * agent's request; `destroy`: cut the stream, as for an upstream's answer) and rejects with
 * `tooLarge()`. Events rather than an async iterator: this runs for every request.
 */
export function readBounded(body: Readable | NodeJS.ReadableStream, limit: number, tooLarge: () => Error, overLimit: "drain" | "destroy", failed: (err: unknown) => Error = (e) => (e instanceof Error ? e : new Error(String(e)))): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= limit) return void chunks.push(chunk);
      done = true;
      body.removeListener("data", onData);
      if (overLimit === "drain") body.resume();
      else (body as Readable).destroy();
      reject(tooLarge());
    };
    body.on("data", onData);
    body.once("end", () => {
      if (!done) resolve(chunks.length === 1 ? chunks[0]!.toString("utf8") : Buffer.concat(chunks).toString("utf8"));
    });
    body.once("error", (err: unknown) => {
      if (!done) reject(failed(err));
    });
  });
}
