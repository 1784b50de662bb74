#!/usr/bin/env python3
"""Regenerates tests/Tessera.Text.Tests/Fixtures/spm-unigram.json.gz: the pieces, scores, types and
precompiled charsmap of a SentencePiece unigram model (built by Debian's spm_train with its default
nmt_nfkc rule), and the ids SentencePiece itself (Debian's spm_encode) gives for every single-line
case of the stress corpus plus normalization cases. This is the reference for GGUF `t5`
vocabularies, whose tokenizer (llama.cpp's UGM) follows SentencePiece.
    apt-get install sentencepiece
    spm_train --input=INPUT --model_prefix=/tmp/t5like --vocab_size=2000 --model_type=unigram --character_coverage=1.0
    python3 bench/peers/spm-unigram-oracle.py /tmp/t5like.model
(INPUT: see bench/peers/hf-precompiled-oracle.mjs.)"""
import base64, gzip, json, os, struct, subprocess, sys

model_path = sys.argv[1]
repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
out = os.path.join(repo, 'tests/Tessera.Text.Tests/Fixtures/spm-unigram.json.gz')


def fields(buf):
    """Protocol-buffer wire format: (field, value) pairs; enough for sentencepiece_model.proto."""
    i = 0
    def varint():
        nonlocal i
        v = s = 0
        while True:
            b = buf[i]; i += 1
            v |= (b & 0x7F) << s; s += 7
            if not b & 0x80:
                return v
    while i < len(buf):
        key = varint(); f, wire = key >> 3, key & 7
        if wire == 0: yield f, varint()
        elif wire == 1: yield f, buf[i:i + 8]; i += 8
        elif wire == 2:
            n = varint(); yield f, buf[i:i + n]; i += n
        elif wire == 5: yield f, buf[i:i + 4]; i += 4
        else: raise ValueError(f'wire type {wire}')


data = open(model_path, 'rb').read()
pieces, scores, types, charsmap = [], [], [], None
for f, v in fields(data):
    if f == 1:
        p, s, t = '', 0.0, 1
        for g, w in fields(v):
            if g == 1: p = w.decode('utf-8')
            elif g == 2: s = struct.unpack('<f', w)[0]
            elif g == 3: t = w
        pieces.append(p); scores.append(s); types.append(t)
    elif f == 3:
        for g, w in fields(v):
            if g == 2: charsmap = base64.b64encode(w).decode('ascii')

corpus = json.load(open(os.path.join(repo, 'tests/Tessera.Text.Tests/Fixtures/hf/stress-corpus.json'), encoding='utf-8'))
cases = []
for c in corpus:
    text = c['text'] if 'text' in c else ''.join(chr(u) for u in c['utf16'])
    text = text.encode('utf-16', 'surrogatepass').decode('utf-16', 'replace')  # lone surrogates -> U+FFFD
    if '\n' in text or '\r' in text or text == '':
        continue  # spm_encode reads one input per line
    cases.append((c['name'], text))
extra = [('fullwidth', 'ＡＢＣ１２３ａｂｃ！？'), ('ligatures', 'ﬁne ﬂow ﬀ ǆ'), ('circled', '①②③ ⑴ ㈠'),
         ('superscripts', 'x² y³ H₂O'), ('spaces', '   many    spaces   here  '), ('nbsp', 'a\u00a0b\u2003c\u3000d'),
         ('tabs', 'a\tb\t\tc'), ('decomposed', 'e\u0301 a\u0308 Å'), ('halfwidth-kana', 'ｶﾀｶﾅ ﾊﾟ'), ('math', '𝐀𝐁𝐂 𝔸'),
         ('zero-width', 'a\u200bb\u200dc\ufeffd'), ('control', 'a\u0001b\u007fc')]
cases += [('extra/' + n, t) for n, t in extra]
inp = '\n'.join(t for _, t in cases) + '\n'
res = subprocess.run(['spm_encode', f'--model={model_path}', '--output_format=id'], input=inp.encode('utf-8'), capture_output=True, check=True)
lines = res.stdout.decode('utf-8').split('\n')
rows = [{'name': n, 'text': t, 'ids': [int(x) for x in lines[k].split()]} for k, (n, t) in enumerate(cases)]
ver = subprocess.run(['dpkg-query', '-W', '-f=${Version}', 'sentencepiece'], capture_output=True, text=True).stdout
doc = {'oracle': f'spm_encode (Debian sentencepiece {ver})', 'pieces': pieces, 'scores': scores, 'types': types,
       'precompiled_charsmap': charsmap, 'cases': rows}
tmp = out + '.tmp'
with gzip.open(tmp, 'wt', encoding='utf-8', compresslevel=9) as fh:
    json.dump(doc, fh, ensure_ascii=False)
os.replace(tmp, out)
print(len(rows), 'cases,', len(pieces), 'pieces')
