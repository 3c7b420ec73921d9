"""The caption tokenizer: byte-level BPE (Hugging Face `tokenizers`) trained on captions.

Byte-level, with all 256 bytes in the alphabet, so every string encodes with no unknown
token and `decode(encode(c))` gives `c` back exactly. Training is deterministic for a
given caption set and vocabulary size. The special tokens hold fixed ids below every
learnt token, and text that happens to spell one ("[MASK]") is encoded as plain bytes:
only the pipeline places special tokens.

A `CaptionTokenizer` holds its serialized JSON and builds the library object on first
use, so it pickles into Grain's spawned workers, which tokenize each batch's captions.
Its file (`save`/`load`) records the format, the library and the library version that
wrote it, and the vocabulary size the model's embedding table was sized for.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import tokenizers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from jaxmusic.data import records
from jaxmusic.data.sources import open_split
from jaxmusic.paths import as_path, is_remote

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")  # at the ids above
# Every byte is a token of its own, so no vocabulary can be smaller than this.
MIN_VOCAB_SIZE = len(SPECIAL_TOKENS) + 256
TOKENIZER_FILE = "tokenizer.json"
FILE_FORMAT = 1


class TokenizerError(ValueError):
    """A tokenizer file that is damaged or not a jaxmusic tokenizer."""


class CaptionTokenizer:
    """A trained caption tokenizer: `vocab_size` (the size the model's token table is
    built for; the trained vocabulary is at most that) and `json` (the library's
    serialization)."""

    def __init__(self, tokenizer_json: str, vocab_size: int):
        self.json, self.vocab_size = tokenizer_json, int(vocab_size)
        self._lock = threading.Lock()
        self._tok: Tokenizer | None = None
        tok = self._library()  # a bad serialization fails here, not in a data worker
        for i, token in enumerate(SPECIAL_TOKENS):
            if tok.token_to_id(token) != i:
                raise TokenizerError(f"special token {token} is not at id {i}")
        if tok.get_vocab_size() > self.vocab_size:
            raise TokenizerError(
                f"holds {tok.get_vocab_size()} tokens, more than vocab_size {self.vocab_size}"
            )

    def _library(self) -> Tokenizer:
        if self._tok is None:
            with self._lock:  # Grain's reading threads share one tokenizer
                if self._tok is None:
                    tok = Tokenizer.from_str(self.json)
                    # Not serialized by the library: captions spelling "[SEP]" stay text.
                    tok.encode_special_tokens = True
                    self._tok = tok
        return self._tok

    def encode(self, texts: Sequence[str], max_len: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids int32[N, max_len], mask bool[N, max_len]): each text as [CLS] tokens
        [SEP], its tokens cut so that [SEP] stays last, then [PAD]s (mask False)."""
        if max_len < 2:
            raise ValueError(f"max_len must leave room for [CLS] and [SEP], got {max_len}")
        ids = np.full((len(texts), max_len), PAD, np.int32)
        mask = np.zeros((len(texts), max_len), bool)
        encoded = self._library().encode_batch(list(texts), add_special_tokens=False)
        for row, enc in enumerate(encoded):
            body = enc.ids[: max_len - 2]
            end = len(body) + 1
            ids[row, 0], ids[row, 1:end], ids[row, end] = CLS, body, SEP
            mask[row, : end + 1] = True
        return ids, mask

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        """The text of one row of ids, special tokens (padding included) left out."""
        kept = [int(i) for i in np.asarray(ids).reshape(-1) if i >= len(SPECIAL_TOKENS)]
        return self._library().decode(kept, skip_special_tokens=False)

    def to_bytes(self) -> bytes:
        """The tokenizer file's content, as `save` writes it."""
        doc = {
            "format": FILE_FORMAT,
            "library": "tokenizers",
            "version": tokenizers.__version__,
            "vocab_size": self.vocab_size,
            "tokenizer": json.loads(self.json),
        }
        return (json.dumps(doc, indent=1, ensure_ascii=False) + "\n").encode()

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "tokenizer file") -> CaptionTokenizer:
        """A tokenizer from a file's content; a damaged one raises a one-line
        TokenizerError that starts with `name`."""
        try:
            doc = json.loads(data.decode())
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise TokenizerError(f"{name}: damaged tokenizer file (not JSON: {_first_line(e)})") from None
        if not isinstance(doc, dict) or doc.get("library") != "tokenizers" or "tokenizer" not in doc:
            raise TokenizerError(f"{name}: not a jaxmusic tokenizer file")
        if doc.get("format") != FILE_FORMAT:
            raise TokenizerError(
                f"{name}: tokenizer file format {doc.get('format')!r}, this jaxmusic reads {FILE_FORMAT}"
            )
        if not isinstance(doc.get("vocab_size"), int):
            raise TokenizerError(f"{name}: damaged tokenizer file (no integer vocab_size)")
        try:
            # Through the library and back: `json` is then exactly what training gives.
            canonical = Tokenizer.from_str(json.dumps(doc["tokenizer"])).to_str()
            return cls(canonical, doc["vocab_size"])
        except Exception as e:  # the library raises its own untyped errors
            written = doc.get("version")
            other = "" if written == tokenizers.__version__ else f"; written by tokenizers {written}"
            raise TokenizerError(f"{name}: damaged tokenizer file ({_first_line(e)}{other})") from None

    def save(self, path: str | os.PathLike) -> None:
        """Write the tokenizer file; readers see the old file or the whole new one."""
        path = as_path(path)
        if is_remote(path):  # an object store replaces an object whole
            path.write_bytes(self.to_bytes())
        else:
            records.write_bytes_atomic(path, self.to_bytes())

    @classmethod
    def load(cls, path: str | os.PathLike) -> CaptionTokenizer:
        """Read a tokenizer file; a missing or damaged one raises a one-line error."""
        path = as_path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no tokenizer file")
        return cls.from_bytes(path.read_bytes(), str(path))

    def __getstate__(self) -> dict[str, Any]:
        return {"json": self.json, "vocab_size": self.vocab_size}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Checked when made; a worker builds the library object on first use.
        self.json, self.vocab_size = state["json"], state["vocab_size"]
        self._lock, self._tok = threading.Lock(), None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CaptionTokenizer):
            return NotImplemented
        return (self.vocab_size, self.json) == (other.vocab_size, other.json)

    def __hash__(self) -> int:
        return hash((self.vocab_size, self.json))

    def __repr__(self) -> str:
        return f"CaptionTokenizer(vocab_size={self.vocab_size})"


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:200]


def train_tokenizer(captions: Sequence[str], vocab_size: int) -> CaptionTokenizer:
    """Byte-level BPE of at most `vocab_size` tokens (special tokens included) learnt from
    `captions`; the same captions, in any order, give the same tokenizer."""
    if vocab_size < MIN_VOCAB_SIZE:
        raise ValueError(
            f"vocab_size {vocab_size} is too small: a byte-level tokenizer needs at least "
            f"{MIN_VOCAB_SIZE} ({len(SPECIAL_TOKENS)} special tokens + 256 bytes)"
        )
    if not captions:
        raise ValueError("no captions to train a tokenizer on")
    tok = Tokenizer(models.BPE())
    # No prefix space: it would come back from decode as a leading space.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(sorted(captions), trainer)
    return CaptionTokenizer(tok.to_str(), vocab_size)


def split_captions(data_dir: str, split: str) -> list[str]:
    """The captions of a prepared split's clips, in stored order; a clip without one is
    skipped, and a split with none is a ValueError naming it."""
    source = open_split(data_dir, split)
    chunked = isinstance(source, records.SplitReader) and source.chunked
    captions = []
    for i in range(len(source)):
        # A chunked split reads each header alone, not the audio behind it.
        header = source.header(i) if chunked else records.decode_header(source[i])[0]
        if header.get("caption"):
            captions.append(header["caption"])
    if not captions:
        raise ValueError(f"split '{split}' of {data_dir} has no captions: a text model needs captioned clips")
    return captions


def load_or_train(
    workdir: str | os.PathLike | None, data_dir: str, split: str, vocab_size: int
) -> CaptionTokenizer:
    """The run's tokenizer: `workdir/tokenizer.json` when there is one (restored with the
    checkpoint; a vocab_size other than `vocab_size` is a ValueError), else one trained on
    `split`'s captions. Writing it is the trainer's job."""
    if workdir is not None:
        path = as_path(workdir) / TOKENIZER_FILE
        if path.exists():
            tokenizer = CaptionTokenizer.load(path)
            if tokenizer.vocab_size != vocab_size:
                raise ValueError(
                    f"{path} has vocab_size {tokenizer.vocab_size}, the config asks for {vocab_size}: "
                    "the run's checkpoint was trained with that tokenizer, so keep its vocab_size "
                    "or start a new workdir"
                )
            return tokenizer
    return train_tokenizer(split_captions(data_dir, split), vocab_size)
