import { expect } from "chai";
import { artifacts, ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { parseEther } from "ethers";
import { DEFAULT_RISK_PARAMS, wad } from "../shared/system";
import { addPriceFeed, assetId } from "../shared/oracles";
import {
  DAY,
  DEFAULT_LISTING_FLOORS,
  DEFAULT_SERIES_PARAMS,
  deployOptionsSystem,
  fromNow,
  listSeries,
  seriesParams,
  type SeriesParams,
} from "../shared/options";
import { rawConfig } from "../shared/configs";
import { parseNetworkConfig } from "../../deploy/networkConfig";

// Review round 101: the session's two OptionMarket changes. SeriesParamsLib (a3a745a) moved the series
// parameters' bounds, floors and steps into a linked library; totalPoolDeltaRatio (d8f05b5) holds the
// risk role's delta ratio raises to a sum of 1 over underlyings. Rows 247–248.

const ETH = assetId("ETH");
const BTC = assetId("BTC");
const SOL = assetId("SOL");
const name = (parameter: string) => ethers.encodeBytes32String(parameter);

async function fixture() {
  const sys = await deployOptionsSystem();
  const expiry = await fromNow(30n * DAY);
  const call = await listSeries(sys.options, "ETH", "3000", expiry, true);
  return { ...sys, expiry, call };
}

/** The runtime code's opcodes (PUSH data skipped, the CBOR metadata cut off). */
function opcodes(code: string): number[] {
  const bytes = ethers.getBytes(code);
  const metadata = (bytes[bytes.length - 2] << 8) | bytes[bytes.length - 1];
  const end = bytes.length - 2 - metadata;
  const ops: number[] = [];
  for (let i = 0; i < end; i++) {
    ops.push(bytes[i]);
    if (bytes[i] >= 0x60 && bytes[i] <= 0x7f) i += bytes[i] - 0x5f;
  }
  return ops;
}

describe("SeriesParamsLib: OptionMarket's series-parameter refusals after the move", function () {
  it("refuses a listing naming the first parameter out of its hard bound, then of its floor, in the old order and at the wei", async function () {
    const { options, expiry } = await loadFixture(fixture);
    const list = (p: SeriesParams) => options.listSeries(ETH, wad("3100"), expiry, true, p);
    const over: SeriesParams = {
      spreadFactor: wad("0.1") + 1n,
      fee: wad("0.005") + 1n,
      insuranceFeeShare: wad("0.5") + 1n,
      maxOpenInterest: 10n ** 30n + 1n,
    };
    const refusals: [Partial<SeriesParams>, string][] = [
      [{}, "spreadFactor"],
      [{ spreadFactor: wad("0.1") }, "fee"],
      [{ spreadFactor: wad("0.1"), fee: wad("0.005") }, "insuranceFeeShare"],
      [{ spreadFactor: wad("0.1"), fee: wad("0.005"), insuranceFeeShare: wad("0.5") }, "maxOpenInterest"],
      [
        { spreadFactor: wad("0.1"), fee: wad("0.005"), insuranceFeeShare: wad("0.5"), maxOpenInterest: 0n },
        "maxOpenInterest",
      ],
      // A hard bound is named before a floor; the fee floor before the spread floor.
      [{ spreadFactor: wad("0.1") + 1n, fee: DEFAULT_LISTING_FLOORS.minFee - 1n }, "spreadFactor"],
      [
        {
          spreadFactor: DEFAULT_LISTING_FLOORS.minSpreadFactor - 1n,
          fee: DEFAULT_LISTING_FLOORS.minFee - 1n,
          insuranceFeeShare: 0n,
          maxOpenInterest: 1n,
        },
        "fee",
      ],
      [
        {
          spreadFactor: DEFAULT_LISTING_FLOORS.minSpreadFactor - 1n,
          fee: DEFAULT_LISTING_FLOORS.minFee,
          insuranceFeeShare: 0n,
          maxOpenInterest: 1n,
        },
        "spreadFactor",
      ],
    ];
    for (const [fix, parameter] of refusals) {
      await expect(list({ ...over, ...fix }))
        .to.be.revertedWithCustomError(options, "SeriesParamOutOfBounds")
        .withArgs(name(parameter));
    }
    // Every hard bound is inclusive, and so is each floor.
    const atBounds = {
      spreadFactor: wad("0.1"),
      fee: wad("0.005"),
      insuranceFeeShare: wad("0.5"),
      maxOpenInterest: 10n ** 30n,
    };
    await expect(list(atBounds)).to.emit(options, "SeriesListed");
    const atFloors = { ...DEFAULT_SERIES_PARAMS, ...DEFAULT_LISTING_FLOORS };
    await expect(
      options.listSeries(ETH, wad("3200"), expiry, true, {
        ...atFloors,
        spreadFactor: DEFAULT_LISTING_FLOORS.minSpreadFactor,
      }),
    ).to.emit(options, "SeriesListed");
  });

  it("refuses an update naming a hard bound before a step and a step before a floor, each step inclusive at the wei", async function () {
    const { options, call } = await loadFixture(fixture);
    const d = {
      spreadFactor: BigInt(DEFAULT_SERIES_PARAMS.spreadFactor),
      fee: BigInt(DEFAULT_SERIES_PARAMS.fee),
      insuranceFeeShare: BigInt(DEFAULT_SERIES_PARAMS.insuranceFeeShare),
      maxOpenInterest: BigInt(DEFAULT_SERIES_PARAMS.maxOpenInterest),
    };
    const top = {
      spreadFactor: d.spreadFactor + wad("0.01"),
      fee: d.fee + wad("0.001"),
      insuranceFeeShare: d.insuranceFeeShare + wad("0.1"),
      maxOpenInterest: 2n * d.maxOpenInterest,
    };
    const refusals: [SeriesParams, string][] = [
      // The fee's hard bound is named before the spread factor's step.
      [{ ...top, spreadFactor: top.spreadFactor + 1n, fee: wad("0.005") + 1n }, "fee"],
      [{ ...top, spreadFactor: top.spreadFactor + 1n, fee: top.fee + 1n }, "spreadFactor"],
      [{ ...top, fee: top.fee + 1n, insuranceFeeShare: top.insuranceFeeShare + 1n }, "fee"],
      [
        { ...top, insuranceFeeShare: top.insuranceFeeShare + 1n, maxOpenInterest: top.maxOpenInterest + 1n },
        "insuranceFeeShare",
      ],
      [{ ...top, maxOpenInterest: top.maxOpenInterest + 1n }, "maxOpenInterest"],
      // A step before a floor: the fee below its floor (a step of 0.00005) with the share's step too big.
      [
        { ...d, fee: DEFAULT_LISTING_FLOORS.minFee - 1n, insuranceFeeShare: top.insuranceFeeShare + 1n },
        "insuranceFeeShare",
      ],
      [
        {
          ...d,
          fee: DEFAULT_LISTING_FLOORS.minFee - 1n,
          spreadFactor: DEFAULT_LISTING_FLOORS.minSpreadFactor - 1n,
        },
        "fee",
      ],
      [{ ...d, spreadFactor: DEFAULT_LISTING_FLOORS.minSpreadFactor - 1n }, "spreadFactor"],
    ];
    for (const [p, parameter] of refusals) {
      await expect(options.setSeriesParams(call, p))
        .to.be.revertedWithCustomError(options, "SeriesParamOutOfBounds")
        .withArgs(name(parameter));
    }
    // All four at their largest step at once.
    await expect(options.setSeriesParams(call, top)).to.emit(options, "SeriesParamsUpdated");
    expect((await options.series(call)).params).to.deep.equal(Object.values(top));
  });

  it("lets a series below a raised floor stay there or step toward it, never fall further", async function () {
    const { options, call } = await loadFixture(fixture);
    await options.configureUnderlying(ETH, wad("1"), wad("1"), wad("0.0005"), wad("0.02"));
    const d = seriesParams();
    for (const [p, parameter] of [
      [{ ...d, fee: BigInt(d.fee) - 1n }, "fee"],
      [{ ...d, spreadFactor: BigInt(d.spreadFactor) - 1n }, "spreadFactor"],
    ] as const) {
      await expect(options.setSeriesParams(call, p))
        .to.be.revertedWithCustomError(options, "SeriesParamOutOfBounds")
        .withArgs(name(parameter));
    }
    await expect(options.setSeriesParams(call, { ...d, maxOpenInterest: wad("1500") })).to.emit(
      options,
      "SeriesParamsUpdated",
    );
    await time.increase(DAY);
    await expect(
      options.setSeriesParams(call, { ...d, fee: wad("0.0004"), spreadFactor: wad("0.015") }),
    ).to.emit(options, "SeriesParamsUpdated");
  });

  it("steps from the parameters of the series it updates (the storage pointer), not another's", async function () {
    const { options, call, expiry } = await loadFixture(fixture);
    const b: SeriesParams = {
      spreadFactor: wad("0.05"),
      fee: wad("0.002"),
      insuranceFeeShare: wad("0.4"),
      maxOpenInterest: wad("10"),
    };
    const other = await listSeries(options, "ETH", "3300", expiry, false, b);
    // One full step from b's values: four steps too many from the first series' (DEFAULT_SERIES_PARAMS).
    const next = {
      spreadFactor: wad("0.06"),
      fee: wad("0.003"),
      insuranceFeeShare: wad("0.5"),
      maxOpenInterest: wad("20"),
    };
    await expect(options.setSeriesParams(call, next))
      .to.be.revertedWithCustomError(options, "SeriesParamOutOfBounds")
      .withArgs(name("spreadFactor"));
    await expect(options.setSeriesParams(other, next)).to.emit(options, "SeriesParamsUpdated");
    expect((await options.series(other)).params).to.deep.equal(Object.values(next));
    expect((await options.series(call)).params).to.deep.equal(Object.values(DEFAULT_SERIES_PARAMS));
  });

  it("links a library that holds no state and can neither be replaced nor destroyed, and whose direct calls change nothing", async function () {
    const { options } = await loadFixture(fixture);
    const market = await artifacts.readArtifact("OptionMarket");
    const refs = market.deployedLinkReferences["contracts/libraries/SeriesParamsLib.sol"].SeriesParamsLib;
    const code = ethers.getBytes(await ethers.provider.getCode(options));
    // Every call site carries the same address, fixed in the deployed code: no setter can swap it.
    const linked = new Set(refs.map((r) => ethers.hexlify(code.slice(r.start, r.start + r.length))));
    expect(linked.size).to.equal(1);
    const [address] = [...linked].map((a) => ethers.getAddress(a));
    const lib = await artifacts.readArtifact("SeriesParamsLib");
    const libCode = await ethers.provider.getCode(address);
    // The deployed library is the artifact's (past its call-protection PUSH20 of its own address).
    expect(ethers.dataSlice(libCode, 21)).to.equal(ethers.dataSlice(lib.deployedBytecode, 21));
    const ops = opcodes(libCode);
    for (const [op, opName] of [
      [0x55, "SSTORE"],
      [0xf0, "CREATE"],
      [0xf1, "CALL"],
      [0xf2, "CALLCODE"],
      [0xf4, "DELEGATECALL"],
      [0xf5, "CREATE2"],
      [0xff, "SELFDESTRUCT"],
    ] as const) {
      expect(ops.includes(op), opName).to.equal(false);
    }
    // Called directly, checkListing reverts before any check (the call protection: its own address,
    // pushed at deployment, against ADDRESS); checkUpdate reads the library's own storage, empty: every
    // old value 0, so the default share (0.2) is a step of more than 0.1 from it.
    const direct = await ethers.getContractAt("SeriesParamsLib", address);
    await expect(direct.checkListing(DEFAULT_SERIES_PARAMS, 0n, 0n)).to.be.revertedWithoutReason();
    const update = ethers.concat([
      "0x1cdb7e8f", // checkUpdate(IOptionMarket.SeriesParams storage,IOptionMarket.SeriesParams,uint256,uint256)
      ethers.AbiCoder.defaultAbiCoder().encode(
        ["uint256", "tuple(uint256,uint256,uint256,uint256)", "uint256", "uint256"],
        [0n, Object.values(DEFAULT_SERIES_PARAMS), 0n, 0n],
      ),
    ]);
    const [signer] = await ethers.getSigners();
    await expect(signer.sendTransaction({ to: address, data: update }))
      .to.be.revertedWithCustomError(options, "SeriesParamOutOfBounds")
      .withArgs(name("insuranceFeeShare"));
    expect(await ethers.provider.getCode(address)).to.equal(libCode);
  });
});

describe("OptionMarket.totalPoolDeltaRatio", function () {
  async function expectSumOfRatios(
    options: Awaited<ReturnType<typeof fixture>>["options"],
    expected: bigint,
  ) {
    let sum = 0n;
    for (const u of [ETH, BTC]) sum += (await options.underlyingLimits(u)).poolDeltaRatio;
    expect(sum).to.equal(expected);
    expect(await options.totalPoolDeltaRatio()).to.equal(expected);
  }

  it("equals the sum of the ratios through a second configuration, cuts, raises and the timelock interleaved", async function () {
    const { options } = await loadFixture(fixture);
    await expectSumOfRatios(options, wad("2"));
    // A second configureUnderlying (a floors change) restates no ratio and adds nothing.
    await options.configureUnderlying(ETH, wad("3"), wad("3"), wad("0.0005"), wad("0.01"));
    await expectSumOfRatios(options, wad("2"));
    // Restating a ratio at a sum above 1 is no raise; a vega raise leaves the delta sum alone.
    await options.setPoolDeltaRatio(ETH, wad("1"));
    await options.setPoolVegaRatio(ETH, wad("2"));
    await expectSumOfRatios(options, wad("2"));
    await options.setPoolDeltaRatio(ETH, wad("0.25"));
    await options.setPoolDeltaRatio(BTC, wad("0.25"));
    await expectSumOfRatios(options, wad("0.5"));
    await options.setPoolDeltaRatio(ETH, wad("0.5"));
    await options.configureUnderlying(ETH, wad("1"), wad("1"), wad("0.0005"), wad("0.01"));
    await expectSumOfRatios(options, wad("0.75"));
    await expect(options.setPoolDeltaRatio(ETH, wad("0.6"))).to.be.revertedWithCustomError(
      options,
      "UpdateTooSoon",
    );
    await options.setPoolDeltaRatio(ETH, wad("0.4"));
    await expectSumOfRatios(options, wad("0.65"));
    await time.increase(DAY);
    await options.setPoolDeltaRatio(BTC, wad("0.5"));
    await expect(options.setPoolDeltaRatio(ETH, wad("0.8")))
      .to.be.revertedWithCustomError(options, "PoolRatioOutOfBounds")
      .withArgs(name("totalPoolDeltaRatio"), wad("1.3"));
    await options.setPoolDeltaRatio(ETH, wad("0.5"));
    await expectSumOfRatios(options, wad("1"));
  });

  it("counts a new underlying's first values and refuses the risk role one it has not configured", async function () {
    const { options, router, engine } = await loadFixture(fixture);
    await addPriceFeed(router, "SOL", "150");
    await expect(options.setPoolDeltaRatio(SOL, 1n))
      .to.be.revertedWithCustomError(options, "UnderlyingNotConfigured")
      .withArgs(SOL);
    await engine.listUnderlying(SOL, DEFAULT_RISK_PARAMS);
    await expect(options.setPoolDeltaRatio(SOL, 1n))
      .to.be.revertedWithCustomError(options, "UnderlyingNotConfigured")
      .withArgs(SOL);
    await options.configureUnderlying(SOL, wad("1"), wad("0.3"), 0n, 0n);
    expect(await options.totalPoolDeltaRatio()).to.equal(wad("2.3"));
  });

  // Row 247. The on-chain sum assumes the default floor (5% of spot); a config whose floors are higher
  // passes the scripts' pin bound at deployment, and the risk role's raises within the sum then pin more.
  it("within the sum of 1, the risk role takes what far options pin to 0.8 of the pool where SOL's floor is 0.1", async function () {
    const { options, router, engine } = await loadFixture(fixture);
    await addPriceFeed(router, "SOL", "150");
    await engine.listUnderlying(SOL, { ...DEFAULT_RISK_PARAMS, shortOptionFloor: wad("0.1") });
    await options.configureUnderlying(SOL, wad("1"), wad("0.3"), 0n, 0n);
    await options.setPoolDeltaRatio(ETH, wad("0.2"));
    await options.setPoolDeltaRatio(BTC, wad("0.2"));
    await options.setPoolDeltaRatio(SOL, wad("0.6"));
    expect(await options.totalPoolDeltaRatio()).to.equal(wad("1"));
    let pin = 0n;
    for (const u of [ETH, BTC, SOL]) {
      const floor = (await engine.riskParams(u)).shortOptionFloor;
      pin += (2n * (await options.underlyingLimits(u)).poolDeltaRatio * floor) / wad("0.2");
    }
    expect(pin).to.equal(wad("0.8"));
  });

  it("is mirrored by the deploy scripts, which refuse floors at which the risk role's raises within the sum of 1 pin more than half the pool", function () {
    const config = rawConfig("sepolia");
    config.underlyings.ETH.shortOptionFloor = "0.1";
    config.underlyings.BTC.shortOptionFloor = "0.1";
    config.optionMarket.poolDeltaRatio = { ETH: "0.25", BTC: "0.25" };
    // At deployment 2 × (0.25 + 0.25) × 0.1 / 0.2 = 0.5: within MAX_FAR_OPTION_PIN, so accepted before.
    expect(() => parseNetworkConfig(config)).to.throw(
      "optionMarket.poolDeltaRatio: the risk role's raises within OptionMarket's ratio sum of 1.0 could let far out-of-the-money options pin 1.0 of the pool at a shortOptionFloor of 0.1, at most 0.5",
    );
    config.underlyings.ETH.shortOptionFloor = "0.05";
    config.underlyings.BTC.shortOptionFloor = "0.05";
    expect(parseNetworkConfig(config).optionMarket.poolDeltaRatio).to.deep.equal({
      ETH: parseEther("0.25"),
      BTC: parseEther("0.25"),
    });
  });

  // Row 248. Above the sum of 1 every cut is final: nobody can raise a ratio back (configureUnderlying
  // keeps a configured underlying's ratios, the risk role's raise is refused), short of a new market.
  it("at the timelock's sum of 2, a cut of ETH 1 → 0.5 cannot be undone the next day", async function () {
    const { options } = await loadFixture(fixture);
    await options.setPoolDeltaRatio(ETH, wad("0.5"));
    await time.increase(DAY);
    await expect(options.setPoolDeltaRatio(ETH, wad("1")))
      .to.be.revertedWithCustomError(options, "PoolRatioOutOfBounds")
      .withArgs(name("totalPoolDeltaRatio"), wad("2"));
    await options.configureUnderlying(ETH, wad("1"), wad("1"), 0n, 0n);
    expect((await options.underlyingLimits(ETH)).poolDeltaRatio).to.equal(wad("0.5"));
  });

  it("is mirrored by the deploy scripts, which refuse delta ratios summing above the on-chain 1, even where low floors keep the pin within half", function () {
    const config = rawConfig("sepolia");
    config.underlyings.ETH.shortOptionFloor = "0.025";
    config.underlyings.BTC.shortOptionFloor = "0.025";
    config.optionMarket.poolDeltaRatio = { ETH: "1", BTC: "1" };
    // 2 × (1 + 1) × 0.025 / 0.2 = 0.5: accepted before.
    expect(() => parseNetworkConfig(config)).to.throw(
      "optionMarket.poolDeltaRatio: the ratios sum to 2.0, above OptionMarket's 1.0 (totalPoolDeltaRatio): the risk role could not raise a ratio back after a cut",
    );
    config.optionMarket.poolDeltaRatio = { ETH: "0.5", BTC: "0.5" };
    expect(parseNetworkConfig(config).optionMarket.poolDeltaRatio.ETH).to.equal(parseEther("0.5"));
  });
});
