/**
 * The operator console's front door (STYLE.md pattern 2): the composition root builds one
 * ConsoleFeed, hands it every written audit event, and mounts consoleRouter on the HTTP app.
 */
export { ConsoleFeed, DEFAULT_MAX_AGE_MS, DEFAULT_MAX_EVENTS, type ConsoleFeedOptions, type ConsoleListener, type FeedStats } from "./feed.js";
export { roleAuthorizer } from "./authorize.js";
export { CONSOLE_PATH, consoleRouter, type ConsoleRouterOptions } from "./router.js";
export type { Summary } from "./summary.js";
export {
  OUTCOMES,
  type ConsoleBundleInfo,
  type ConsoleEntry,
  type ConsoleFilter,
  type ConsoleIntegrity,
  type ConsoleOperator,
  type DriftedTool,
  type PendingApproval,
} from "./types.js";
