import type { BlockTag } from "ethers";
import type { XMarginClient } from "../client";
import type { Health } from "../state";
import { toHealth } from "../math/health";
import { read } from "./internal/chain";

/** Parameters of `getHealth`. */
export interface GetHealthParameters {
  accountId: bigint;
  blockTag?: BlockTag;
}

/**
 * The account's health as the engine computes it (`MarginEngine.health`). Throws `UnknownAccount` for
 * an id that does not exist, which the engine's view reads as an empty account: all zeros and an
 * unbounded health ratio, i.e. "healthy".
 * @example
 * const h = await getHealth(client, { accountId });
 * console.log(formatUsd(h.equityMaintenance), "/", formatUsd(h.maintenanceRequirement));
 */
export async function getHealth(client: XMarginClient, params: GetHealthParameters): Promise<Health> {
  const at = { blockTag: params.blockTag ?? "latest" };
  const [h] = await read(client, () =>
    Promise.all([
      client.contracts.engine.health(params.accountId, at),
      client.contracts.accounts.marginMode(params.accountId, at),
    ]),
  );
  return toHealth(h);
}
