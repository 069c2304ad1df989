"""Jobs that combine both stages: ``evaluate`` (the DreamBench protocol: generate with the LoRA,
insert into scenes, score). They sit above ``training`` and ``insertion``; ``evaluation`` (the
scores themselves) sits below both, so the stages can rank and score without a cycle."""
