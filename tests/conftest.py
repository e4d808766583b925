"""Shared fixtures: a tiny seeded integer model built without torch (about a second)."""

import pytest

from lmpress.model.config import ModelConfig
from lmpress.model.quantize import quantize_model, seeded_float_weights
from lmpress.model.tokenizer import ByteTokenizer, train_tokenizer
from lmpress.model.weights import IntegerWeights

# Fixed English prose and code, so the tokenizer (and every archive made with it) is the
# same on every run.
PROSE = """\
A compressor that predicts the next word well spends few bits on it. The arithmetic coder
turns each probability into a fraction of a bit, so the size of the archive is the cross
entropy of the model on the data. When the model is surprised, the file grows; when it
knows what comes next, the file shrinks. This is why people say that compression is a
form of intelligence, and why a language model can be used as a lossless compressor.
The decoder must compute exactly the same probabilities as the encoder, bit for bit, on
every machine, or the message turns into noise after a few hundred characters.
"""

CODE = '''\
def read_lines(path, encoding="utf-8"):
    """Return the lines of a text file without their newlines."""
    with open(path, encoding=encoding) as f:
        return [line.rstrip("\\n") for line in f]


class Counter:
    def __init__(self):
        self.counts = {}

    def add(self, key, n=1):
        self.counts[key] = self.counts.get(key, 0) + n
        return self.counts[key]


for i in range(10):
    if i % 2 == 0:
        print(i, "is even")
    else:
        print(i, "is odd")
'''

TEXT = (PROSE + "\n" + CODE + "\n") * 3


@pytest.fixture(scope="session")
def tiny_model() -> IntegerWeights:
    tj = train_tokenizer(iter([TEXT]), 320)
    cfg = ModelConfig(vocab_size=ByteTokenizer(tj).vocab_size, n_layer=2, n_head=2,
                      n_embd=32, n_hidden=64, window=16, max_positions=256)
    weights = quantize_model(seeded_float_weights(cfg, 7), cfg, tj, "tiny-test")
    return IntegerWeights.from_bytes(weights.to_bytes())


@pytest.fixture(scope="session")
def tiny_model_path(tiny_model, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("model") / "tiny-test.safetensors"
    tiny_model.save(path)
    return str(path)
