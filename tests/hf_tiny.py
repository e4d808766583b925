"""Test helper: a tiny byte-level BPE tokenizer trained on the fixed test text and saved
as a Hugging Face tokenizer directory (BOS = EOS = "<s>"), for tiny random HF models."""

from conftest import TEXT


def save_hf_tokenizer(path, normalizer=None) -> int:
    """Write the tokenizer files into `path`; returns the vocabulary size."""
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator([TEXT], trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    if normalizer is not None:
        tok.normalizer = normalizer
    transformers.PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>",
                                         eos_token="<s>").save_pretrained(path)
    return tok.get_vocab_size()
