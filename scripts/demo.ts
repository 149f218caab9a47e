/**
 * `npm run demo`: the whole story on Hardhat's in-process chain — the Ignition deployment, LPs and
 * traders in cross and isolated accounts with perps and options, a crash liquidated by the keeper's own
 * code, option expiry settled by the keeper — printed as tables (scripts/lib/demo.ts).
 */
import { runDemo } from "./lib/demo";

runDemo().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
