// Regenerates supplementary-plane.json: expected tiktoken ids for text with characters outside
// the BMP, computed with js-tiktoken (whose regexes use the "u" flag, so they classify Unicode
// scalar values as tiktoken's Rust regex does). Run from the repo root after
// `npm install --prefix bench/node`:  node tests/Tessera.Text.Tests/Data/supplementary-plane.mjs
// Samples use single spaces and lone line feeds only: js-tiktoken spells cl100k's whitespace
// alternatives differently (no \s++$), which matters only for runs of whitespace.
import { writeFileSync, readFileSync } from "node:fs";
import { getEncoding } from "../../../bench/node/node_modules/js-tiktoken/dist/index.js";

const samples = [
  "𝐀𝐁𝐂 bold 𝐚𝐛𝐜 letters",
  "x😀y and 😀Hello",
  "𠀀𠀁𠀂 CJK Ext B 𪚥 and 中文",
  "Gothic 𐌰𐌱𐌲𐌳 runes",
  "digits 𝟏𝟐𝟑𝟒𝟓 and 12345",
  "mixed𝐀b's 𝐇𝐞𝐥𝐥𝐨\n𝐰𝐨𝐫𝐥𝐝! 𝐇ELLO",
  "(𝐱) 𝑓(𝑥)=𝑥² 🚀launch",
  "𝐀's a𝐀's b",
  " 𝐚pple 𝐀pple",
  "x𝐀'll 𝐚'd 𝐁'RE",
];
const pkg = JSON.parse(readFileSync(new URL("../../../bench/node/node_modules/js-tiktoken/package.json", import.meta.url)));
const out = { generator: `js-tiktoken ${pkg.version} (npm), tests/Tessera.Text.Tests/Data/supplementary-plane.mjs`, cases: [] };
for (const encoding of ["cl100k_base", "o200k_base"]) {
  const enc = getEncoding(encoding);
  for (const text of samples) out.cases.push({ encoding, text, ids: enc.encode(text) });
}
const lines = out.cases.map((c) => "  " + JSON.stringify(c));
writeFileSync(new URL("./supplementary-plane.json", import.meta.url),
  `{\n "generator": ${JSON.stringify(out.generator)},\n "cases": [\n${lines.join(",\n")}\n ]\n}\n`);
console.log(`wrote ${out.cases.length} cases`);
