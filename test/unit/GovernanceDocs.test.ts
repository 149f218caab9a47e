import { expect } from "chai";
import { readFileSync } from "fs";
import { join } from "path";
import { FUNCTION_ROLES, Role, type ContractName } from "../../deploy/roles";

/**
 * Who may call a privileged function is decided in one place, `deploy/roles.ts`, and read by
 * integrators and governance operators in the contracts' NatSpec. Session 37 found two NatSpec claims
 * that had drifted from it: `MarginEngine.registerMarket` and `CollateralVault.listCollateral` said
 * "Listing role" although both were made the timelock's in session 4 (a registered market can move any
 * account's quote; a listed token is valued at any asset's price).
 */

const SOURCES: Record<ContractName, [contract: string, iface: string]> = {
  OracleRouter: ["oracles/OracleRouter.sol", "interfaces/IOracleRouter.sol"],
  CollateralVault: ["core/CollateralVault.sol", "interfaces/ICollateralVault.sol"],
  MarginEngine: ["core/MarginEngine.sol", "interfaces/IMarginEngine.sol"],
  PerpMarket: ["markets/PerpMarket.sol", "interfaces/IPerpMarket.sol"],
  OptionMarket: ["markets/OptionMarket.sol", "interfaces/IOptionMarket.sol"],
  InsuranceFund: ["core/InsuranceFund.sol", "interfaces/IInsuranceFund.sol"],
  LiquidityPool: ["markets/LiquidityPool.sol", "interfaces/ILiquidityPool.sol"],
  LiquidationAuction: ["core/LiquidationAuction.sol", "interfaces/ILiquidationAuction.sol"],
};

/**
 * How NatSpec names each role (ADMIN is the timelock once deployed, the deployer while it wires). A doc
 * may mention other roles for context ("the risk role may then only cut it"): only its own is checked.
 */
const NAMED: Record<keyof typeof Role, RegExp> = {
  ADMIN: /timelock|\badmin\b/i,
  RISK_MANAGER: /RISK_MANAGER|risk(-manager)? role/i,
  LISTING: /LISTING|listing role/i,
  GUARDIAN: /GUARDIAN|guardian/i,
  TREASURY: /TREASURY|treasury role/i,
  BACKSTOP: /BACKSTOP|backstop role/i,
};

const source = (file: string): string => readFileSync(join(__dirname, "../../contracts", file), "utf8");

/** The `///` lines right above `function name(` in `text` (empty when the function is not there). */
function natSpecOf(text: string, name: string): string {
  const lines = text.split("\n");
  const at = lines.findIndex((line) => line.includes(`function ${name}(`));
  const doc: string[] = [];
  for (let i = at - 1; at > 0 && i >= 0 && lines[i].trim().startsWith("///"); i--)
    doc.unshift(lines[i].trim());
  return doc.join(" ");
}

/** Every function of `text` guarded by AccessManaged's `restricted` modifier. */
const restrictedFunctions = (text: string): string[] =>
  [...text.matchAll(/function (\w+)\([^)]*\)[^{;]*\brestricted\b/g)].map((match) => match[1]);

describe("Governance roles in NatSpec", function () {
  for (const [contract, [file, ifaceFile]] of Object.entries(SOURCES) as [ContractName, [string, string]][]) {
    it(`${contract}: every restricted function's NatSpec names the role deploy/roles.ts grants (the timelock when none)`, function () {
      const text = source(file);
      const iface = source(ifaceFile);
      const functions = restrictedFunctions(text);
      expect(functions, "restricted functions found").to.not.be.empty;
      const roleNames = Object.keys(Role) as (keyof typeof Role)[];
      for (const fn of functions) {
        const granted = FUNCTION_ROLES[contract][fn] ?? Role.ADMIN;
        const expected = roleNames.find((name) => Role[name] === granted)!;
        const doc = `${natSpecOf(text, fn)} ${natSpecOf(iface, fn)}`;
        expect(doc, `${contract}.${fn}: no NatSpec names its role (${expected})`).to.match(NAMED[expected]);
      }
    });
  }
});
