/**
 * The shipped deployment configs (deploy/config/*.json) as raw JSON, for tests that change a field and
 * ask the parser (`parseNetworkConfig`) what it makes of it.
 */
import fs from "node:fs";
import path from "node:path";
import { formatEther, parseEther } from "ethers";

const CONFIG_DIR = path.join(__dirname, "../../deploy/config");

/** `network`'s config as read from its JSON file, before parsing (a fresh copy each call). */
export function rawConfig(network: string) {
  return JSON.parse(fs.readFileSync(path.join(CONFIG_DIR, `${network}.json`), "utf8"));
}

/**
 * Sepolia's config on `chainId`, with the feeds' published thresholds; with `fees`, every perp market's
 * maker and taker fee and a round-trip floor equal to their sum; with `optionMinFee`, the option fee
 * floor of ETH and BTC.
 */
export function sepoliaOn(
  chainId: number,
  thresholds: Record<string, string>,
  fees?: [maker: string, taker: string],
  optionMinFee?: string,
) {
  const config = rawConfig("sepolia");
  config.chainId = chainId;
  for (const [feed, threshold] of Object.entries(thresholds))
    config.feeds[feed].deviationThreshold = threshold;
  if (fees) {
    type Market = { makerFee: string; takerFee: string; minRoundTripFee: string };
    for (const market of Object.values(config.perpMarkets) as Market[]) {
      [market.makerFee, market.takerFee] = fees;
      market.minRoundTripFee = formatEther(parseEther(fees[0]) + parseEther(fees[1]));
    }
  }
  if (optionMinFee) config.optionMarket.minFee = { ETH: optionMinFee, BTC: optionMinFee };
  return config;
}
