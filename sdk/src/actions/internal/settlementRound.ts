/**
 * The search for an option series' settlement round, shared by the SDK (`getOptionSettlement`,
 * `settleOptionSeries`) and the keeper (scripts/keeper/options.ts): one search, so a UI and the keeper
 * always name the same round. Internal: not exported from the package.
 */
import type { BlockTag } from "ethers";
import type { AggregatorV3Interface, IOracleRouter } from "../../contracts";

/**
 * Option settlement: the series' settlement round is the first round at or after `expiry` of the feed
 * `OracleRouter.settlementFeed` names (OptionMarket.settleSeries has the router check `updatedAt ≥
 * expiry` for the hint and `< expiry` for the round before it, in the same phase); `latest` is that
 * feed's last round that may settle (its latest, or its last as primary for a replaced feed), and
 * `expiry` the time sought on it (the swap's, for a successor). Chainlink round ids carry the phase in their high 16 bits and the
 * aggregator's round below; within a phase, timestamps grow with the round.
 *
 * `readRound(id)` returns a round's `updatedAt`, or null when the round does not exist. The common case
 * (the latest round is the first after expiry) costs one read; otherwise a binary search over the phase
 * costs about log2(rounds) reads, however long ago the expiry was. Returns null while the latest round
 * is still before expiry, and when the first round after expiry cannot be proven (it opens its phase and
 * `provesFirst` does not accept it, or the round before it is missing). A returned id always passes
 * settleSeries' check: it is at or after expiry and its predecessor exists and is before, or it opens
 * its phase and `provesFirst` (the router's own check, `getSettlementPrice`: the first round of a feed
 * configured before its first answer) accepted it (a gap inside a phase, which Chainlink aggregators do
 * not have, can only make the search give up).
 */
export async function findSettlementRound(
  latest: { roundId: bigint; updatedAt: bigint },
  expiry: bigint,
  readRound: (roundId: bigint) => Promise<bigint | null>,
  provesFirst: (roundId: bigint) => Promise<boolean> = async () => false,
): Promise<bigint | null> {
  if (latest.updatedAt < expiry) return null;
  const first = ((latest.roundId >> 64n) << 64n) + 1n; // the phase's first round
  const before = async (id: bigint): Promise<boolean> => {
    const updatedAt = await readRound(id);
    return updatedAt === null || updatedAt < expiry;
  };
  let found: bigint;
  if (latest.roundId > first && (await before(latest.roundId - 1n))) {
    found = latest.roundId;
  } else {
    // Smallest id in [first, latest] at or after expiry (latest is).
    let lo = first;
    let hi = latest.roundId;
    while (lo < hi) {
      const mid = (lo + hi) / 2n;
      if (await before(mid)) lo = mid + 1n;
      else hi = mid;
    }
    found = hi;
  }
  // No earlier round in its phase proves it first: only the router can, for a feed's first round.
  if (found === first) return (await provesFirst(first)) ? first : null;
  const previous = await readRound(found - 1n);
  if (previous === null || previous === 0n || previous >= expiry) return null;
  return found;
}

/** The router's views the search reads. */
export type SettlementRouter = Pick<IOracleRouter, "settlementFeed" | "getSettlementPrice">;

/** A price feed's round reader, by address. */
export type AggregatorAt = (address: string) => Pick<AggregatorV3Interface, "getRoundData">;

/** The round that settles a series, and the feed it is a round of. */
export interface SettlementRound {
  /** The feed `OracleRouter.settlementFeed` names (the primary at expiry, or a successor). */
  feed: string;
  /** The round `settleSeries` takes as its hint. */
  roundId: bigint;
}

/**
 * The round that settles a series of `underlying` expiring at `expiry` and its feed, or null while none
 * can: found on the feed the router names (`settlementFeed`: the primary at expiry, even if replaced
 * since, or a successor when it posted nothing after expiry before the swap, `from` then being the swap's
 * time), up to its last round as primary (the latest, if current). A phase's first round is proven by the
 * router alone (`getSettlementPrice`: the first round of a feed configured before it). Every read is at
 * `blockTag` (the latest block without it).
 */
export async function settlementRound(
  router: SettlementRouter,
  aggregatorAt: AggregatorAt,
  underlying: string,
  expiry: bigint,
  blockTag?: BlockTag,
): Promise<SettlementRound | null> {
  const at = blockTag === undefined ? {} : { blockTag };
  const [address, from, lastRound, lastUpdatedAt] = await router.settlementFeed(underlying, expiry, at);
  const feed = aggregatorAt(address);
  const roundId = await findSettlementRound(
    { roundId: lastRound, updatedAt: lastUpdatedAt },
    from,
    async (id) => {
      try {
        return (await feed.getRoundData(id, at)).updatedAt;
      } catch {
        return null; // some aggregators revert on a missing round
      }
    },
    async (id) => (await router.getSettlementPrice(underlying, expiry, id, false, at)).price > 0n,
  );
  return roundId === null ? null : { feed: address, roundId };
}

/**
 * `settlementRound`'s round alone (`settleSeries`' hint), read at the latest block: what the keeper
 * sends.
 */
export async function settlementRoundHint(
  router: SettlementRouter,
  aggregatorAt: AggregatorAt,
  underlying: string,
  expiry: bigint,
): Promise<bigint | null> {
  return (await settlementRound(router, aggregatorAt, underlying, expiry))?.roundId ?? null;
}
