"""Rebuild sdxlkit/data/clip_tokenizer/{vocab.json,merges.txt} from CLIP's BPE file.

The BPE file ships in the open_clip_torch wheel as open_clip/bpe_simple_vocab_16e6.txt.gz:
    pip download --no-deps open_clip_torch -d /tmp/w && unzip -p /tmp/w/*.whl '*/bpe_simple_vocab_16e6.txt.gz' > bpe.txt.gz
    python tools/make_clip_tokenizer.py bpe.txt.gz sdxlkit/data/clip_tokenizer
The slicing follows OpenAI CLIP's SimpleTokenizer; the result equals openai/clip-vit-large-patch14's files.
"""

import gzip
import json
import sys
from pathlib import Path


def bytes_to_unicode() -> dict[int, str]:
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, codes)))


def main(bpe_path: str, out_dir: str) -> None:
    lines = gzip.open(bpe_path).read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : 49152 - 256 - 2 + 1]]
    vocab = list(bytes_to_unicode().values())
    vocab += [v + "</w>" for v in vocab]
    vocab += ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "vocab.json").write_text(json.dumps({tok: i for i, tok in enumerate(vocab)}, ensure_ascii=False), encoding="utf-8")
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
