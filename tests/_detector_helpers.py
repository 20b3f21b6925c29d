"""Tiny randomly initialised Grounding DINO and OWLv2 models of the real
transformers classes, saved with a tokenizer and processor that load offline.
``full_size=True`` builds the released architectures instead (Grounding DINO
tiny: Swin-T + BERT-base at 800x1333; OWLv2 base/16 at 960x960), still with
random weights and the small offline tokenizer (benchmarks)."""

from __future__ import annotations

from pathlib import Path

import torch

WORDS = ["ball", "yellow", "red", "card", "goal", "referee", "player", "a", "photo", "of"]


def bert_vocab() -> list[str]:
    """A WordPiece vocabulary with the special tokens at BERT's ids, which
    Grounding DINO's text masks rely on ([CLS] 101, [SEP] 102, '.' 1012, '?' 1029)."""
    vocab = [f"[unused{i}]" for i in range(1100)]
    for index, token in {0: "[PAD]", 100: "[UNK]", 101: "[CLS]", 102: "[SEP]", 103: "[MASK]",
                         1012: ".", 1029: "?"}.items():
        vocab[index] = token
    for offset, word in enumerate(WORDS):
        vocab[1040 + offset] = word
    return vocab


def make_tiny_grounding_dino(directory: Path, full_size: bool = False) -> Path:
    from transformers import (BertConfig, BertTokenizer, GroundingDinoConfig, GroundingDinoForObjectDetection,
                              GroundingDinoImageProcessor, GroundingDinoProcessor, SwinConfig)

    torch.manual_seed(0)
    directory.mkdir(parents=True, exist_ok=True)
    vocab = bert_vocab()
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizer(vocab={token: i for i, token in enumerate(vocab)}, do_lower_case=True)
    text = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=64, max_position_embeddings=64)
    backbone = SwinConfig(image_size=64, patch_size=4, embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2],
                          window_size=4, out_features=["stage2", "stage3", "stage4"])
    config = GroundingDinoConfig(backbone_config=backbone, text_config=text, num_queries=30, encoder_layers=1,
                                 decoder_layers=2, encoder_ffn_dim=32, decoder_ffn_dim=32, d_model=32,
                                 encoder_attention_heads=2, decoder_attention_heads=2, max_text_len=32,
                                 num_feature_levels=3)
    image_processor = GroundingDinoImageProcessor(size={"shortest_edge": 64, "longest_edge": 96})
    if full_size:
        config, image_processor = GroundingDinoConfig(), GroundingDinoImageProcessor()
    GroundingDinoForObjectDetection(config).save_pretrained(directory)
    GroundingDinoProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(directory)
    return directory


def make_tiny_owlv2(directory: Path, full_size: bool = False) -> Path:
    from transformers import CLIPTokenizer, Owlv2Config, Owlv2ForObjectDetection, Owlv2ImageProcessor, Owlv2Processor
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    torch.manual_seed(0)
    directory.mkdir(parents=True, exist_ok=True)
    chars = sorted(set(bytes_to_unicode().values()))
    vocab = {"<|pad|>": 0}
    for suffix in ("", "</w>"):
        for char in chars:
            vocab[char + suffix] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], pad_token="<|endoftext|>")
    config = Owlv2Config(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=24,
                         bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"],
                         pad_token_id=vocab["<|endoftext|>"]),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=64, patch_size=16),
        projection_dim=32)
    image_processor = Owlv2ImageProcessor(size={"height": 64, "width": 64})
    if full_size:
        text = dict(bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"],
                    pad_token_id=vocab["<|endoftext|>"])
        # owlv2-base-patch16-ensemble reads 960x960 (the config's default side is 768)
        config = Owlv2Config(text_config=text, vision_config=dict(image_size=960, patch_size=16))
        image_processor = Owlv2ImageProcessor(size={"height": 960, "width": 960})
    Owlv2ForObjectDetection(config).save_pretrained(directory)
    Owlv2Processor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(directory)
    return directory
