/**
 * Generated sections of a markdown file, between `<!-- name:start -->` and `<!-- name:end -->`
 * markers, so a test or a script can write its table into docs/reliability.md and a later run can
 * check that the document still says what the code does.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";

const markers = (name: string): [string, string] => [`<!-- ${name}:start -->`, `<!-- ${name}:end -->`];

/** The body of section `name` in `file`, or null if the file or the section is missing. */
export function readSection(file: string, name: string): string | null {
  if (!existsSync(file)) return null;
  const text = readFileSync(file, "utf8");
  const [start, end] = markers(name);
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  if (i < 0 || j < i) return null;
  return text.slice(i + start.length, j).trim();
}

/** Replaces the body of section `name` in `file` (appending the section if it is missing). */
export function writeSection(file: string, name: string, body: string): void {
  const [start, end] = markers(name);
  const text = existsSync(file) ? readFileSync(file, "utf8") : "";
  const block = `${start}\n${body.trim()}\n${end}`;
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  const next =
    i >= 0 && j > i
      ? text.slice(0, i) + block + text.slice(j + end.length)
      : `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(file, next);
}
