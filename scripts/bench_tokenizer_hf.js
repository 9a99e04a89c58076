// Times Hugging Face `tokenizers` (the Node binding of the same Rust library as the Python one)
// on a corpus, for scripts/bench_tokenizer.sh. A fresh tokenizer per run (its BPE word cache
// starts empty, as a fresh csa-tokenize process does); the encode call alone is timed.
//
//   node bench_tokenizer_hf.js MODULE_DIR KIND TOKENIZER CORPUS RUNS
//     KIND tokenizer.json: TOKENIZER is a tokenizer.json
//     KIND gpt2-files:     TOKENIZER is a directory with encoder.json + vocab.bpe (BPE + ByteLevel,
//                          <|endoftext|> special: what GPT2TokenizerFast builds from them)
// (no decoder is set: only encoding is timed)
// Prints one JSON object: version, n_tokens, sha256 of the ids as int32 little-endian, seconds.
'use strict';
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');

async function load(tk, kind, file) {
  if (kind === 'tokenizer.json') return tk.Tokenizer.fromFile(file);
  if (kind === 'gpt2-files') {
    const model = await tk.BPE.fromFile(path.join(file, 'encoder.json'), path.join(file, 'vocab.bpe'));
    const t = new tk.Tokenizer(model);
    t.setPreTokenizer(tk.byteLevelPreTokenizer(false, true));
    t.addSpecialTokens(['<|endoftext|>']);
    return t;
  }
  throw new Error(`unknown kind ${kind}`);
}

async function main() {
  const [moduleDir, kind, file, corpus, runsArg] = process.argv.slice(2);
  const tk = require(moduleDir);
  const version = JSON.parse(fs.readFileSync(path.join(moduleDir, 'package.json'), 'utf8')).version;
  const text = fs.readFileSync(corpus, 'utf8');
  const runs = parseInt(runsArg, 10);
  const encode = [], loadSeconds = [];
  let ids = null;
  for (let r = 0; r < runs; r++) {
    const t0 = process.hrtime.bigint();
    const tok = await load(tk, kind, file);
    const t1 = process.hrtime.bigint();
    // add_special_tokens = true: the template, as csa-tokenize's default (nothing for these).
    const enc = await tok.encode(text, null, { addSpecialTokens: true });
    const t2 = process.hrtime.bigint();
    loadSeconds.push(Number(t1 - t0) / 1e9);
    encode.push(Number(t2 - t1) / 1e9);
    if (ids === null) ids = enc.getIds();
  }
  const buf = Buffer.alloc(ids.length * 4);
  ids.forEach((v, i) => buf.writeInt32LE(v, i * 4));
  process.stdout.write(JSON.stringify({
    library: 'tokenizers (Node binding)', version, node: process.version, kind, tokenizer: file,
    rayon_num_threads: process.env.RAYON_NUM_THREADS || null,
    n_tokens: ids.length, ids_sha256_int32le: crypto.createHash('sha256').update(buf).digest('hex'),
    encode_seconds: encode, load_seconds: loadSeconds,
  }) + '\n');
}

main().catch((e) => { console.error(String(e && e.stack || e)); process.exit(1); });
