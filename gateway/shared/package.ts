import { fileURLToPath } from "node:url";

/**
 * Files shipped with the package (package.json `files`), found from this module's place in
 * dist/gateway/shared/ rather than from the working directory, so the CLI finds them wherever it runs.
 */
export function packagePath(relative: string): string {
  return fileURLToPath(new URL(`../../../${relative}`, import.meta.url));
}
