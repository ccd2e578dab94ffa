"""The downstream check (paper appendix): a source model finetuned as a sentence-pair classifier.

Tasks (:mod:`.tasks`), the classifier and its training (:mod:`.finetune`), the report's table
(:mod:`.table`).
"""

from xfer.downstream.finetune import (
    POSITION_BIAS,
    SOURCES,
    DownstreamConfig,
    PairClassifier,
    accuracy,
    encode_pairs,
    load_task,
    run,
    truncate_pair,
)

__all__ = ["POSITION_BIAS", "SOURCES", "DownstreamConfig", "PairClassifier",
           "accuracy", "encode_pairs", "load_task", "run", "truncate_pair"]
