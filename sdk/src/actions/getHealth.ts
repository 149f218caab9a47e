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
 * The account's health as the engine computes it (`MarginEngine.health`).
 * @example
 * const h = await getHealth(client, { accountId });
 * console.log(formatUsd(h.equityMaintenance), "/", formatUsd(h.maintenanceRequirement));
 */
export async function getHealth(client: XMarginClient, params: GetHealthParameters): Promise<Health> {
  const h = await read(client, () =>
    client.contracts.engine.health(params.accountId, { blockTag: params.blockTag ?? "latest" }),
  );
  return toHealth(h);
}
