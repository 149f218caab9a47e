/**
 * Optional strategy: settle expired option series. Runs only when the deployment names an
 * `optionMarket` (OptionMarket is deployed by its own module); otherwise `createOptionSettlement`
 * returns null and the loop skips it.
 *
 * Per expired, unsettled series: find the primary feed's first round at or after expiry (walking back
 * from the latest round, see logic.settlementRound) and call `settleSeries(id, roundHint)`. Per settled
 * series: settle the positions still open, `settleAccounts(holders, id)`, holders being the accounts
 * that traded or received the series (OptionTraded / PositionTransferred events) and still hold it.
 * Everything is re-derived from chain state each time, so a repeated step sends nothing new.
 */
import { Contract, type JsonRpcProvider } from "ethers";
import type { Contracts } from "./chain";
import { blockRanges, chunk, settlementRound } from "./logic";
import type { Logger } from "./log";
import type { TxSender } from "./sender";

/** The part of IOptionMarket the keeper uses (its typechain types live on the options branch). */
const OPTION_MARKET_ABI = [
  "function seriesCount() view returns (uint256)",
  "function series(uint256 seriesId) view returns (tuple(bytes32 underlying, uint256 strike, uint256 expiry, bool isCall, bool settled, int256 skew, uint256 settlementPrice, uint256 longOpenInterest, uint256 shortOpenInterest, tuple(uint64 spreadFactor, uint64 fee, uint64 insuranceFeeShare, uint128 maxOpenInterest) params))",
  "function positionSize(uint256 accountId, uint256 seriesId) view returns (int256)",
  "function settleSeries(uint256 seriesId, uint80 roundIdHint)",
  "function settleAccounts(uint256[] accountIds, uint256 seriesId)",
  "event OptionTraded(uint256 indexed accountId, uint256 indexed seriesId, int256 sizeDelta, uint256 premiumPerContract, int256 newSize, uint256 premium, uint256 fee)",
  "event PositionTransferred(uint256 indexed fromAccountId, uint256 indexed toAccountId, uint256 indexed seriesId, int256 size)",
];

/** How far back (rounds) to look for the settlement round in one step. */
const MAX_ROUND_WALK = 50;
const SETTLE_BATCH = 50;

export interface OptionSettlement {
  step(head: number, now: bigint): Promise<void>;
}

export function createOptionSettlement(
  address: string | undefined,
  deps: {
    contracts: Contracts;
    provider: JsonRpcProvider;
    sender: TxSender;
    log: Logger;
    startBlock: number;
    logRange: number;
  },
): OptionSettlement | null {
  if (!address) return null;
  const market = new Contract(address, OPTION_MARKET_ABI, deps.provider);
  const { contracts: c, sender, log } = deps;
  const holders = new Map<bigint, Set<bigint>>();
  let scanned = deps.startBlock;

  async function scanHolders(head: number): Promise<void> {
    const topics = [
      [
        market.interface.getEvent("OptionTraded")!.topicHash,
        market.interface.getEvent("PositionTransferred")!.topicHash,
      ],
    ];
    for (const [fromBlock, toBlock] of blockRanges(scanned, head, deps.logRange)) {
      const logs = await deps.provider.getLogs({ address, topics, fromBlock, toBlock });
      for (const entry of logs) {
        const parsed = market.interface.parseLog(entry);
        if (!parsed) continue;
        const seriesId = parsed.args.seriesId as bigint;
        const set = holders.get(seriesId) ?? new Set<bigint>();
        set.add((parsed.name === "OptionTraded" ? parsed.args.accountId : parsed.args.toAccountId) as bigint);
        holders.set(seriesId, set);
      }
      scanned = toBlock + 1;
    }
  }

  async function roundHint(underlying: string, expiry: bigint): Promise<bigint | null> {
    const feed = c.aggregator(await c.router.primaryFeed(underlying));
    const latest = await feed.latestRoundData();
    const rounds = [{ roundId: latest.roundId, updatedAt: latest.updatedAt }];
    // Chainlink round ids: phase in the high 16 bits, the aggregator's round below; walk within the phase.
    const phaseStart = (latest.roundId >> 64n) << 64n;
    for (let id = latest.roundId - 1n; id > phaseStart && rounds.length <= MAX_ROUND_WALK; id--) {
      const round = await feed.getRoundData(id).catch(() => null);
      if (!round) break;
      rounds.push({ roundId: round.roundId, updatedAt: round.updatedAt });
      if (round.updatedAt < expiry) break;
    }
    return settlementRound(rounds, expiry);
  }

  return {
    async step(head: number, now: bigint): Promise<void> {
      await scanHolders(head);
      const count = (await market.seriesCount()) as bigint;
      for (let id = 1n; id <= count; id++) {
        const s = await market.series(id);
        if (BigInt(s.expiry) > now) continue;
        if (!s.settled) {
          const hint = await roundHint(s.underlying, BigInt(s.expiry));
          if (hint === null) {
            log.debug("settlement round not available yet", { seriesId: id });
            continue;
          }
          await sender.send(
            "settleSeries",
            {
              to: address,
              data: market.interface.encodeFunctionData("settleSeries", [id, hint]),
            },
            { seriesId: id, roundId: hint },
          );
          continue;
        }
        const open: bigint[] = [];
        for (const account of holders.get(id) ?? []) {
          if (((await market.positionSize(account, id)) as bigint) !== 0n) open.push(account);
        }
        for (const batch of chunk(open, SETTLE_BATCH)) {
          await sender.send(
            "settleAccounts",
            {
              to: address,
              data: market.interface.encodeFunctionData("settleAccounts", [batch, id]),
            },
            { seriesId: id, accounts: batch.length },
          );
        }
      }
    },
  };
}
