"""The caption tokenizer: deterministic training, exact round trips, its file, its workers."""

import json
import pickle
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxmusic.data import records
from jaxmusic.data.sources import open_split
from jaxmusic.data.tokenizer import (
    CLS,
    MASK,
    PAD,
    SEP,
    TOKENIZER_FILE,
    UNK,
    CaptionTokenizer,
    TokenizerError,
    load_or_train,
    split_captions,
    train_tokenizer,
)
from jaxmusic.prepare import shards

VOCAB = 320


def recaptioned(src, out: Path, caption) -> Path:
    """A copy of dataset `src` whose train clip i has caption `caption(i, old caption)`."""
    shutil.copytree(src, out)
    manifest = records.read_manifest(out)
    entry = manifest["splits"]["train"]
    source = open_split(str(out), "train")
    recs = [records.decode(source[i]) for i in range(len(source))]
    (name,) = entry["shards"]  # the tiny dataset has one shard per split
    (out / name).unlink()
    shards.write_shard(
        out / name,
        (
            records.encode(r["id"], r["audio"], r["sample_rate"], r["labels"], caption(i, r["caption"]))
            for i, r in enumerate(recs)
        ),
    )
    entry["shard_sizes"] = shards.shard_sizes(out, [name], [len(recs)])
    records.write_json_atomic(out / records.MANIFEST, manifest)
    return out


@pytest.fixture(scope="module")
def captions(tiny_data):
    return split_captions(tiny_data, "train")


@pytest.fixture(scope="module")
def tok(captions):
    return train_tokenizer(captions, VOCAB)


def test_training_is_deterministic_for_a_caption_set(tiny_data, captions, tok):
    assert len(captions) == 28 and len(set(captions)) > 20  # every synthetic clip has one
    assert train_tokenizer(captions, VOCAB).json == tok.json
    shuffled = list(captions)
    random.Random(0).shuffle(shuffled)
    assert train_tokenizer(shuffled, VOCAB).json == tok.json
    # A fresh interpreter (new hash seeds, new thread pool) learns the same merges.
    code = (
        "import sys; from jaxmusic.data.tokenizer import split_captions, train_tokenizer; "
        f"sys.stdout.write(train_tokenizer(split_captions({tiny_data!r}, 'train'), {VOCAB}).json)"
    )
    fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert fresh.stdout == tok.json
    assert train_tokenizer(captions, VOCAB + 40).json != tok.json


def test_every_training_caption_round_trips_exactly(captions, tok):
    ids, mask = tok.encode(captions, 128)
    assert not mask[:, -1].any()  # none was cut
    assert [tok.decode(row) for row in ids] == captions
    # Any text, not only what training saw: every byte is in the vocabulary.
    odd = ["Ünïcode \u2013 音楽 🎸", "  two  spaces\tand a tab\n", "", "a literal [SEP] or [MASK]"]
    ids, _ = tok.encode(odd, 128)
    assert [tok.decode(row) for row in ids] == odd
    assert UNK not in ids and not np.isin(ids[:, 1:-1], [CLS, MASK]).any()


def test_special_tokens_have_fixed_ids(tok):
    lib = tok._library()
    assert [lib.token_to_id(t) for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")] == [0, 1, 2, 3, 4]
    assert (PAD, UNK, CLS, SEP, MASK) == (0, 1, 2, 3, 4)
    assert lib.get_vocab_size() <= tok.vocab_size == VOCAB


def test_encode_pads_and_truncates_keeping_sep_last(captions, tok):
    full, _ = tok.encode(captions[:3], 128)
    lengths = (full != PAD).sum(axis=1)
    short = int(lengths.min()) - 4
    ids, mask = tok.encode(captions[:3], short)
    assert ids.dtype == np.int32 and mask.dtype == bool and ids.shape == mask.shape == (3, short)
    assert (ids[:, 0] == CLS).all() and (ids[:, -1] == SEP).all() and mask.all()
    np.testing.assert_array_equal(ids[:, 1:-1], full[:, 1 : short - 1])  # the first tokens, in order
    for row, caption in zip(ids, captions, strict=False):
        assert caption.startswith(tok.decode(row)) and tok.decode(row) != caption
    long = int(lengths.max()) + 5
    ids, mask = tok.encode(captions[:3], long)
    for row, m, n in zip(ids, mask, lengths, strict=True):
        assert m.tolist() == [True] * n + [False] * (long - n)
        assert row[n - 1] == SEP and (row[n:] == PAD).all()
    with pytest.raises(ValueError, match="max_len"):
        tok.encode(["x"], 1)


def test_vocab_size_below_the_byte_alphabet_is_refused(captions):
    with pytest.raises(ValueError, match="at least 261"):
        train_tokenizer(captions, 200)


def test_save_and_load_keep_the_tokenizer_and_record_its_version(tmp_path, tok):
    import tokenizers

    path = tmp_path / TOKENIZER_FILE
    tok.save(path)
    doc = json.loads(path.read_text())
    assert {k: doc[k] for k in ("format", "library", "version", "vocab_size")} == {
        "format": 1,
        "library": "tokenizers",
        "version": tokenizers.__version__,
        "vocab_size": VOCAB,
    }
    assert path.read_bytes() == tok.to_bytes() and not list(tmp_path.glob("*.tmp"))
    loaded = CaptionTokenizer.load(path)
    assert loaded == tok and loaded.json == tok.json and loaded.vocab_size == VOCAB


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[: len(b) // 2],
        lambda b: b"\xff\xfe" + b,
        lambda b: b.replace(b'"library": "tokenizers"', b'"library": "other"'),
        lambda b: b.replace(b'"format": 1', b'"format": 7'),
        lambda b: b.replace(b'"type": "BPE"', b'"type": "Nope"'),
        lambda b: b.replace(b'"[SEP]"', b'"[SEQ]"'),
    ],
)
def test_a_damaged_file_is_one_line_naming_it(tmp_path, tok, damage):
    path = tmp_path / TOKENIZER_FILE
    path.write_bytes(damage(tok.to_bytes()))
    with pytest.raises(TokenizerError) as e:
        CaptionTokenizer.load(path)
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)


def test_a_missing_file_is_one_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="no tokenizer file") as e:
        CaptionTokenizer.load(tmp_path / TOKENIZER_FILE)
    assert "\n" not in str(e.value)


def test_load_or_train_prefers_the_workdir_file_and_refuses_another_vocab_size(tmp_path, tiny_data, tok):
    assert load_or_train(None, tiny_data, "train", VOCAB) == tok
    assert load_or_train(tmp_path, tiny_data, "train", VOCAB) == tok  # no file yet: trained
    other = train_tokenizer(["a caption from another run's data"] * 3, VOCAB)
    other.save(tmp_path / TOKENIZER_FILE)
    assert load_or_train(tmp_path, tiny_data, "train", VOCAB) == other
    with pytest.raises(ValueError, match=f"vocab_size {VOCAB}.*asks for 512"):
        load_or_train(tmp_path, tiny_data, "train", 512)


def test_split_captions_skips_clips_without_one_and_refuses_a_split_with_none(tmp_path, tiny_data, captions):
    some = recaptioned(tiny_data, tmp_path / "some", lambda i, c: None if i % 2 else c)
    assert split_captions(str(some), "train") == captions[::2]
    none = recaptioned(tiny_data, tmp_path / "none", lambda i, c: None)
    with pytest.raises(ValueError, match="split 'train' .* has no captions"):
        split_captions(str(none), "train")


def test_pickling_carries_only_the_json(captions, tok):
    want = tok.encode(captions[:4], 40)
    blob = pickle.dumps(tok)  # after use: the library object stays behind
    assert len(blob) < len(tok.json) + 1000
    copy = pickle.loads(blob)
    assert copy == tok and copy._tok is None
    for a, b in zip(copy.encode(captions[:4], 40), want, strict=True):
        np.testing.assert_array_equal(a, b)
