import { ethers } from "hardhat";

export const WAD = 10n ** 18n;

/** A decimal string or number as an 18-decimal fixed-point bigint (exact: parsed as a string). */
export const wad = (x: string | number): bigint => ethers.parseUnits(String(x), 18);
