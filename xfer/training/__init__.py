"""One training run of the byte-level decoder (pretrain, finetune or scratch) on cpu, cuda or xla,
resumable, independent of Ray: config (:mod:`.config`), batches, the loop (:mod:`.loop`),
checkpoints, devices and ``xfer train`` (:mod:`.cli`)."""
