"""Text tokenizers shared by the methods: a word vocabulary, Reed's character alphabet and a
sentencepiece model, all fitted on training captions only.

All three expose the same small surface (``encode(text, max_len)``, ``decode(ids)``,
``vocab_size``, ``pad_id``, ``mask_id``, ``token_id``, ``special_ids``) so a DataModule view can
tokenise with any of them. Word tokenisation is a regex: ``nltk.word_tokenize`` needs the punkt
data, which cannot be downloaded here.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from capbench.atomic import atomic_write_text

_WORD_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def regex_tokenize(text: str) -> list[str]:
    """Lowercase word tokens (letters/digits, keeping an apostrophe suffix such as "bird's").

    Punctuation is dropped. Deterministic and data-free, unlike ``nltk.word_tokenize``.
    """
    return _WORD_RE.findall(text.lower())


def _pad_or_cut(ids: list[int], max_len: int | None, pad_id: int) -> list[int]:
    if max_len is None:
        return ids
    return ids[:max_len] + [pad_id] * max(0, max_len - len(ids))


@runtime_checkable
class Tokenizer(Protocol):
    """What a DataModule view needs from a tokenizer."""

    @property
    def vocab_size(self) -> int: ...
    @property
    def pad_id(self) -> int: ...
    @property
    def mask_id(self) -> int | None: ...
    @property
    def special_ids(self) -> frozenset[int]: ...
    def encode(self, text: str, max_len: int | None = ...) -> list[int]: ...
    def decode(self, ids: Iterable[int]) -> str: ...
    def token_id(self, token: str) -> int | None: ...


# --------------------------------------------------------------------------- word vocabulary

DEFAULT_SPECIALS = ("<pad>", "<unk>", "<mask>", "<bos>", "<eos>")


class WordVocab:
    """A word vocabulary built from (training) captions, most frequent words first.

    The specials come first, so ``<pad>`` is id 0 when it is the first special. Unknown words
    map to ``<unk>``; ``encode`` pads with ``<pad>`` and cuts at ``max_len`` (Reed: 30).
    """

    def __init__(self, itos: Sequence[str], specials: Sequence[str] = DEFAULT_SPECIALS) -> None:
        self.itos: list[str] = list(itos)
        self.specials: tuple[str, ...] = tuple(specials)
        if self.itos[: len(self.specials)] != list(self.specials):
            raise ValueError("WordVocab: the token list must start with the specials")
        self.stoi: dict[str, int] = {tok: i for i, tok in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("WordVocab: duplicate tokens in the token list")
        for required in ("<pad>", "<unk>"):
            if required not in self.stoi:
                raise ValueError(f"WordVocab: specials must include {required!r}")

    @classmethod
    def build(
        cls,
        texts: Iterable[str],
        min_count: int = 1,
        max_size: int | None = None,
        specials: Sequence[str] = DEFAULT_SPECIALS,
    ) -> WordVocab:
        """Count regex tokens; keep words seen ``min_count`` times, at most ``max_size`` words
        (specials not included), ordered by count then alphabetically (deterministic)."""
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(regex_tokenize(text))
        special_set = set(specials)
        words = sorted(
            (w for w, c in counts.items() if c >= min_count and w not in special_set),
            key=lambda w: (-counts[w], w),
        )
        if max_size is not None:
            words = words[:max_size]
        return cls([*specials, *words], specials)

    def __len__(self) -> int:
        return len(self.itos)

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    @property
    def pad_id(self) -> int:
        return self.stoi["<pad>"]

    @property
    def unk_id(self) -> int:
        return self.stoi["<unk>"]

    @property
    def mask_id(self) -> int | None:
        return self.stoi.get("<mask>")

    @property
    def bos_id(self) -> int | None:
        return self.stoi.get("<bos>")

    @property
    def eos_id(self) -> int | None:
        return self.stoi.get("<eos>")

    @property
    def special_ids(self) -> frozenset[int]:
        return frozenset(self.stoi[s] for s in self.specials)

    def token_id(self, token: str) -> int | None:
        return self.stoi.get(token)

    def tokenize(self, text: str) -> list[str]:
        return regex_tokenize(text)

    def encode(self, text: str, max_len: int | None = 30, add_bos_eos: bool = False) -> list[int]:
        """Token ids, padded with ``<pad>`` / cut to ``max_len`` (None: neither)."""
        ids = [self.stoi.get(tok, self.unk_id) for tok in regex_tokenize(text)]
        if add_bos_eos:
            if self.bos_id is None or self.eos_id is None:
                raise ValueError(
                    "WordVocab.encode(add_bos_eos=True) needs <bos> and <eos> specials"
                )
            ids = [self.bos_id, *ids, self.eos_id]
        return _pad_or_cut(ids, max_len, self.pad_id)

    def decode(self, ids: Iterable[int], skip_specials: bool = True) -> str:
        """Space-joined words; specials (padding included) are left out unless asked for."""
        skip = self.special_ids - {self.unk_id} if skip_specials else frozenset()
        return " ".join(self.itos[i] for i in ids if i not in skip)

    def save(self, path: str | Path) -> None:
        atomic_write_text(
            Path(path), json.dumps({"specials": list(self.specials), "itos": self.itos})
        )

    @classmethod
    def load(cls, path: str | Path) -> WordVocab:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(data["itos"], data["specials"])


# --------------------------------------------------------------------------- char alphabet

# Reed et al.'s character models: lowercase letters, digits and punctuation (the Zhang et al.
# char-CNN alphabet used by reedscot/cvpr2016), plus the space that separates words.
REED_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789-,;.!?:'\"/\\|_@#$%^&*~`+=<>()[]{} "


class CharAlphabet:
    """Reed's character encoding: id 0 is padding, characters are 1..len(alphabet).

    Text is lowercased; characters outside the alphabet are dropped (``unknown="drop"``) or
    mapped to an extra id (``unknown="map"``). ``encode`` always returns ``max_len`` ids
    (Reed: 201), cut or zero-padded.
    """

    def __init__(self, alphabet: str = REED_ALPHABET, unknown: str = "drop") -> None:
        if len(set(alphabet)) != len(alphabet):
            raise ValueError("CharAlphabet: the alphabet has repeated characters")
        if unknown not in ("drop", "map"):
            raise ValueError(f"CharAlphabet: unknown must be 'drop' or 'map', got {unknown!r}")
        self.alphabet = alphabet
        self.unknown = unknown
        self._index = {ch: i + 1 for i, ch in enumerate(alphabet)}
        self.unk_id: int | None = len(alphabet) + 1 if unknown == "map" else None

    @property
    def vocab_size(self) -> int:
        """Number of ids including padding (and the unknown id when mapped)."""
        return len(self.alphabet) + 1 + (self.unk_id is not None)

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def mask_id(self) -> int | None:
        return None

    @property
    def special_ids(self) -> frozenset[int]:
        return frozenset({0} | ({self.unk_id} if self.unk_id is not None else set()))

    def token_id(self, token: str) -> int | None:
        return self._index.get(token)

    def encode(self, text: str, max_len: int | None = 201) -> list[int]:
        ids: list[int] = []
        for ch in text.lower():
            idx = self._index.get(ch)
            if idx is not None:
                ids.append(idx)
            elif self.unk_id is not None:
                ids.append(self.unk_id)
        return _pad_or_cut(ids, max_len, 0)

    def decode(self, ids: Iterable[int]) -> str:
        n = len(self.alphabet)
        return "".join(self.alphabet[i - 1] for i in ids if 1 <= i <= n)


# --------------------------------------------------------------------------- sentencepiece

_SP_SPECIALS = {"pad_id": 0, "unk_id": 1, "bos_id": 2, "eos_id": 3}


class SentencePieceTokenizer:
    """A sentencepiece model trained on the training captions (pad 0, unk 1, bos 2, eos 3,
    ``<mask>`` 4). ``hard_vocab_limit=False`` lets small corpora train with a vocab size larger
    than they can fill, so tiny test sets and the scenes profile work."""

    def __init__(self, model_file: str | Path) -> None:
        import sentencepiece as spm

        self.model_file = Path(model_file)
        self._sp = spm.SentencePieceProcessor(model_file=str(self.model_file))

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        model_prefix: str | Path | None = None,
        vocab_size: int = 8000,
        model_type: str = "unigram",
        out_dir: str | Path | None = None,
        character_coverage: float = 1.0,
        lowercase: bool = True,
    ) -> SentencePieceTokenizer:
        """Train on ``texts`` and write ``<model_prefix>.model`` (or ``<out_dir>/spm.model``)."""
        import sentencepiece as spm

        if model_prefix is None:
            if out_dir is None:
                raise ValueError("SentencePieceTokenizer.train needs model_prefix or out_dir")
            model_prefix = Path(out_dir) / "spm"
        prefix = Path(model_prefix)
        prefix.parent.mkdir(parents=True, exist_ok=True)
        sentences = [t.lower() if lowercase else t for t in texts]
        sentences = [s.strip() for s in sentences if s.strip()]
        if not sentences:
            raise ValueError("SentencePieceTokenizer.train: no non-empty training text")
        # Train under a temp prefix and rename: concurrent runs never read a half-written model.
        tmp_prefix = prefix.parent / f".{prefix.name}.{os.getpid()}.tmp"
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences),
            model_prefix=str(tmp_prefix),
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=character_coverage,
            hard_vocab_limit=False,
            user_defined_symbols=["<mask>"],
            minloglevel=2,
            **_SP_SPECIALS,
        )
        os.replace(f"{tmp_prefix}.model", f"{prefix}.model")
        os.replace(f"{tmp_prefix}.vocab", f"{prefix}.vocab")
        tok = cls(f"{prefix}.model")
        tok.lowercase = lowercase
        return tok

    lowercase: bool = True

    @classmethod
    def load(cls, path: str | Path, lowercase: bool = True) -> SentencePieceTokenizer:
        """Load ``path`` (a ``.model`` file or its prefix)."""
        p = Path(path)
        if p.suffix != ".model":
            p = p.with_name(p.name + ".model")
        tok = cls(p)
        tok.lowercase = lowercase
        return tok

    @property
    def vocab_size(self) -> int:
        return int(self._sp.get_piece_size())

    @property
    def pad_id(self) -> int:
        return int(self._sp.pad_id())

    @property
    def mask_id(self) -> int | None:
        idx = int(self._sp.piece_to_id("<mask>"))
        return None if idx == self._sp.unk_id() else idx

    @property
    def special_ids(self) -> frozenset[int]:
        ids = {self._sp.pad_id(), self._sp.unk_id(), self._sp.bos_id(), self._sp.eos_id()}
        if self.mask_id is not None:
            ids.add(self.mask_id)
        return frozenset(int(i) for i in ids if i >= 0)

    def token_id(self, token: str) -> int | None:
        idx = int(self._sp.piece_to_id(token))
        return None if idx == self._sp.unk_id() and token != "<unk>" else idx

    def pieces(self, text: str) -> list[str]:
        return list(self._sp.encode(text.lower() if self.lowercase else text, out_type=str))

    def encode(self, text: str, max_len: int | None = 30) -> list[int]:
        ids = list(self._sp.encode(text.lower() if self.lowercase else text))
        return _pad_or_cut(ids, max_len, self.pad_id)

    def decode(self, ids: Iterable[int]) -> str:
        skip = self.special_ids
        return str(self._sp.decode([int(i) for i in ids if int(i) not in skip]))

    def __getstate__(self) -> dict:
        # SentencePieceProcessor is not picklable; DataLoader workers reload from the file.
        return {"model_file": str(self.model_file), "lowercase": self.lowercase}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["model_file"])
        self.lowercase = state["lowercase"]
