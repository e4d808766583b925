"""Entries of the shipped models. The sha256 is recorded when a model is exported
(docs/TRAINING.md) and verified every time the file is loaded."""

from .registry import ShippedModel, register

register(ShippedModel(
    name="lmpress-max-mix1",
    file="",
    sha256="35b8ffb796a06fdf3822ca13abd0787e39ad37814f9771b00cc3610484ecffc2",
    levels=(9,),
    summary="max-v1 and small-v5 run side by side, logits averaged 5:3 (model/mix.py); "
            "no file of its own",
    parts=("lmpress-max-v1", "lmpress-small-v5"),
    shares=(160, 96),
))

register(ShippedModel(
    name="lmpress-max-v1",
    file="lmpress-max-v1.safetensors",
    sha256="928d7a7621fbfbb0af025d5c8856e8b06402d001c6d7f2e80d63c4a4c45389b6",
    levels=(7, 8),
    summary="d=384, 8 layers, window 512, small-v1's tokenizer; trained 6 min on one H200 "
            "(298 M tokens, 5.8 epochs of the 12 MB-per-source sample); int8",
))

register(ShippedModel(
    name="lmpress-small-v5",
    file="lmpress-small-v5.safetensors",
    sha256="d71cfb4117ac9b06f143ab7d974d83ccfb0a76799d2d99aa5448ca0aff41fc92",
    levels=(4, 5, 6),  # the default
    summary="small-v3 trained on 3.5 min on one H200 (158 M tokens, 3.1 epochs of the "
            "12 MB-per-source sample); d=192, 5 layers; int8",
))

register(ShippedModel(
    name="lmpress-small-v3",
    file="lmpress-small-v3.safetensors",
    sha256="87ee788899b17d1b66c94608edd23781c6cbca547a8003237b6f7a2db30ea434",
    levels=(),  # the default until small-v5; its archives name it and still decode
    summary="small-v2 trained on to 3x small-v1's tokens; d=192, 5 layers, 4096-token BPE; "
            "int8",
))

register(ShippedModel(
    name="lmpress-small-v2",
    file="lmpress-small-v2.safetensors",
    sha256="6a57047ceac880cc1c4e8b908079302d400e2a04408932c3a23aba5150a17241",
    levels=(),  # the default until small-v3; its archives name it and still decode
    summary="small-v1 trained on to 2x the tokens; d=192, 5 layers, 4096-token BPE; int8",
))

register(ShippedModel(
    name="lmpress-small-v1",
    file="lmpress-small-v1.safetensors",
    sha256="28560469fdbe4313c54f4f4ba15c031910cd937e9da5837bb477e1ba1c6ad83e",
    levels=(),  # the default until small-v2; its archives name it and still decode
    summary="d=192, 5 layers, 4096-token BPE; Debian docs + Python stdlib; int8",
))

register(ShippedModel(
    name="lmpress-fast-v2",
    file="lmpress-fast-v2.safetensors",
    sha256="3f36df052bed5630b3ed219318c950d3b950055f5859af89353de079beb21483",
    levels=(1, 2, 3),
    summary="fast-v1 trained on through 20.5 M more tokens; d=128, 2 layers, window 128, "
            "small-v1's tokenizer; int8",
))

register(ShippedModel(
    name="lmpress-fast-v1",
    file="lmpress-fast-v1.safetensors",
    sha256="553625eaebe6df02de9e73d05ab48597126d84527e2ae720c71b11eb21698ac7",
    levels=(),  # levels 1-3 until fast-v2; its archives name it and still decode
    summary="d=128, 2 layers, window 128, small-v1's tokenizer; same corpus; int8",
))
