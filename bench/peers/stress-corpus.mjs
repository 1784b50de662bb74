// The multilingual stress corpus for tokenizer exactness tests: deterministic (seeded PRNG, no
// randomness from the environment), one case per line of concern. Exported as a function so the
// oracle scripts (HF tokenizers, chat templates) share it; run directly it prints the cases as JSON.
//
// Covers every Unicode general category (a seeded sample of code points of each, from planes 0
// and 1, skipping code points assigned after Unicode 9 so every engine agrees), CJK, Thai,
// Devanagari, Arabic and Hebrew (RTL), combining marks and decomposed forms, emoji ZWJ sequences,
// flags and tags, long digit and whitespace runs, code, special-token look-alikes, and lone
// surrogates (JavaScript strings; engines see them as U+FFFD).

function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6D2B79F5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const CATEGORIES = ['Lu', 'Ll', 'Lt', 'Lm', 'Lo', 'Mn', 'Mc', 'Me', 'Nd', 'Nl', 'No', 'Pc', 'Pd', 'Ps', 'Pe', 'Pi', 'Pf',
  'Po', 'Sm', 'Sc', 'Sk', 'So', 'Zs', 'Zl', 'Zp', 'Cc', 'Cf', 'Co', 'Cn', 'Cs'];

// Blocks whose contents were stable by Unicode 9 (2016); sampling stays inside them.
const STABLE = [[0x0000, 0x052F], [0x0530, 0x08FF], [0x0900, 0x0DFF], [0x0E00, 0x0FFF], [0x1000, 0x18AF], [0x1D00, 0x1DBF],
  [0x1E00, 0x2BFF], [0x2C00, 0x2E42], [0x2E80, 0x2FDF], [0x3000, 0x31BA], [0x3200, 0x4DB5], [0x4E00, 0x9FCC],
  [0xA000, 0xA4FF], [0xA640, 0xA69D], [0xAC00, 0xD7A3], [0xD800, 0xDFFF], [0xE000, 0xF8FF], [0xF900, 0xFAD9],
  [0xFB00, 0xFFFF], [0x10000, 0x100FA], [0x10300, 0x1034A], [0x1D400, 0x1D7FF], [0x1F300, 0x1F5FF], [0x1F600, 0x1F64F],
  [0x20000, 0x2A6D6]];

function sampleCategory(cat, random, count) {
  const re = new RegExp(`^\\p{gc=${cat}}$`, 'u');
  const pool = [];
  for (const [a, b] of STABLE)
    for (let cp = a; cp <= b; cp++) {
      if (cat === 'Cn' && !(cp >= 0xFDD0 && cp <= 0xFDEF) && (cp & 0xFFFE) !== 0xFFFE) continue; // noncharacters only: permanently unassigned
      if (cat === 'Cs') { if (cp >= 0xD800 && cp <= 0xDFFF) pool.push(cp); continue; }
      if (re.test(String.fromCodePoint(cp))) pool.push(cp);
    }
  if (cat === 'Cn') pool.push(0x1FFFE, 0x1FFFF);
  const out = [];
  for (let k = 0; k < Math.min(count, pool.length); k++) out.push(pool[Math.floor(random() * pool.length)]);
  return out;
}

const fromUnits = (units) => String.fromCharCode(...units);

export function stressCorpus() {
  const random = rng(20261206);
  const cases = [];
  const add = (name, text) => cases.push({ name, text });

  for (const cat of CATEGORIES) {
    const cps = sampleCategory(cat, random, 14);
    if (cat === 'Cs') { add(`gc_${cat}`, 'lone ' + fromUnits(cps.slice(0, 6)) + ' surrogates ' + fromUnits([0xDC00, 0xD800])); continue; }
    const chars = cps.map(c => String.fromCodePoint(c));
    add(`gc_${cat}`, `${cat}: ${chars.slice(0, 7).join('')} word ${chars.slice(7).join(' ')}x`);
  }

  add('english', "The quick brown fox jumps over the lazy dog. It's 5 o'clock; DON'T panic, we'll see—I'M sure they'd agree!");
  add('english_caps', 'HELLO World! CamelCaseWords and snake_case_words, URLs like https://example.com/a/b?c=1&d=2.');
  add('chinese', '深度学习模型的分词器必须精确地处理中文文本，包括标点符号：“你好！”和数字１２３。');
  add('japanese', '東京は日本の首都です。カタカナとひらがなを混ぜた文章、ｶﾀｶﾅ半角も。');
  add('korean', '한국어 텍스트도 정확하게 토큰화되어야 합니다. 안녕하세요!');
  add('thai', 'ภาษาไทยไม่มีช่องว่างระหว่างคำ สวัสดีครับ ๑๒๓');
  add('devanagari', 'हिन्दी में लिखा गया वाक्य, संस्कृतम् च। क्षत्रिय ॐ १२३४');
  add('arabic', 'مرحبا بالعالم! هذا نص عربي مع أرقام ٠١٢٣٤٥ وتشكيل: كَتَبَ');
  add('hebrew_rtl', 'שלום עולם, זה טקסט בעברית עם ניקוד: שָׁלוֹם \u200Fmixed\u200E RTL');
  add('combining', 'e\u0301 vs \u00E9, a\u0308\u0304, Z\u0351\u0300\u0364\u036B\u0351\u0314a\u0350\u031Bl\u0311g\u0334o, \u1100\u1161\u11A8 jamo, \uFB01 ligature');
  add('nfc_nfkc', '\u212B \u2126 \u00C5 \u0041\u030A \uFF21\uFF22 \u2460 \u00BD x\u00B2 \u3300 \u1E9B\u0323');
  add('emoji', '👨‍👩‍👧‍👦 family, 👍🏽 thumbs, 🏳️‍🌈 flag, 🇫🇷🇯🇵🇺🇸 flags, 1️⃣ keycap, 🏴󠁧󠁢󠁳󠁣󠁴󠁿 tags, ❤️‍🔥, 🧑🏿‍💻');
  add('digits_long', '3141592653589793238462643383279502884197169399375105820974944592307816406286208998628034825342117067982148086513282306647');
  add('digits_mixed', 'Numbers: 1,234,567.89 and 1e-10, 0x1F, v2.3.4, 2026-12-06T04:22:24Z, ١٢٣ ۴۵۶ ৭৮৯ 𝟙𝟚𝟛');
  add('spaces_long', 'a' + ' '.repeat(40) + 'b' + '\t'.repeat(9) + 'c' + ' \t '.repeat(7) + 'd   ');
  add('newlines', 'line one\n\nline two\r\n\r\n\n   \n\t\nindent\n' + '\n'.repeat(12) + 'end\n');
  add('unicode_spaces', 'nbsp\u00A0x\u2003em\u3000ideo\u2028ls\u2029ps\u202Fnnbsp\u205F\u1680ogham \u200B zwsp');
  add('code_python', 'def f(x: int) -> int:\n    """Doc."""\n    return x ** 2 + 1  # comment\n\nprint(f(3))\n');
  add('code_csharp', 'public static int Sum(ReadOnlySpan<int> xs)\n{\n\tint s = 0;\n\tforeach (var x in xs) s += x;\n\treturn s;\n}');
  add('code_json', '{"key": "value", "list": [1, 2, 3], "nested": {"a": null, "b": true}, "esc": "\\n\\t\\u00e9"}');
  add('code_html', '<div class="x">&amp; &lt;tag&gt; <br/><!-- c --></div>\n<script>if (a && b || c) {}</script>');
  add('special_lookalikes', '<s> </s> <unk> <|endoftext|> <|begin_of_text|> <|eot_id|> <|im_start|>user<|im_end|> <start_of_turn> <end_of_turn> <bos> <eos> <pad> <|start|> <|end|> <｜begin▁of▁sentence｜>');
  add('special_glued', 'x<|endoftext|>y<|im_end|>\n<s>z</s><bos><mask><start_of_image>');
  add('surrogates', 'a\uD800b\uDFFFc\uD83D\uD83D\uDE00 \uDE00\uD83D end');
  add('control', 'nul\u0000 bell\u0007 esc\u001B[0m del\u007F nel\u0085 bom\uFEFF soft\u00ADhyphen');
  add('empty', '');
  add('single_space', ' ');
  add('leading_spaces', '   leading and trailing   ');
  add('apostrophes', "'s 't 're 've 'm 'll 'd 'S 'T 'RE 'VE 'M 'LL 'D ’s ''double'' don't we'Ve");
  add('punctuation_runs', '!!!??? ... --- === +++ *** ### @@@ $$$ %%% ^^^ &&& ((( ))) [[[ ]]] {{{ }}} ||| \\\\ /// ~~~ ```');
  add('mixed_scripts', 'Latin中文Русскийالعربيةעבריתहिन्दीไทย日本語한국어Ελληνικά');
  add('greek_cyrillic', 'Ελληνικά ΣΊΣΥΦΟΣ σίσυφος, Русский ЯЗЫК ёЁ, Ǆǅǆ ǈ titlecase, İstanbul ıi');
  add('math', '∀x∈ℝ: ∫₀^∞ e^{-x²} dx = √π/2, ∑_{n=1}^{∞} 1/n² = π²/6, 𝔸𝔹ℂ 𝐀𝐁𝐂 𝒜');

  // Mixed lines: seeded picks of fragments from the cases above.
  const base = cases.filter(c => c.text.length > 0).map(c => c.text);
  for (let k = 0; k < 24; k++) {
    const parts = [];
    const n = 2 + Math.floor(random() * 3);
    for (let j = 0; j < n; j++) {
      const src = base[Math.floor(random() * base.length)];
      const cps = Array.from(src);
      const a = Math.floor(random() * cps.length);
      const len = 1 + Math.floor(random() * 24);
      parts.push(cps.slice(a, a + len).join(''));
    }
    const seps = [' ', '', '\n', '  ', '\t'];
    add(`mixed_${k}`, parts.join(seps[Math.floor(random() * seps.length)]));
  }
  return cases;
}

/** A case for JSON: lone surrogates cannot travel in UTF-8 JSON, so such texts carry their UTF-16 code units. */
export function toJsonCase(c) {
  return c.text.isWellFormed() ? { name: c.name, text: c.text } : { name: c.name, utf16: Array.from({ length: c.text.length }, (_, i) => c.text.charCodeAt(i)) };
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(JSON.stringify(stressCorpus().map(toJsonCase), null, 1));
