# The shared tokenizer and the models: embedded ones pretrained here, hub/GGUF ones resolved.


include: "inputs/models.smk"


rule train_tokenizer:
    """The byte-level BPE tokenizer shared by the embedded models."""
    input:
        tables=tokenizer_tables,
    output:
        directory(f"{RESULTS}/tokenizer"),
    log:
        "logs/train_tokenizer.log",
    benchmark:
        "benchmarks/train_tokenizer.tsv"
    conda:
        "../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        spec=config["tokenizer"],
        code=code_hash("train_tokenizer.py"),
    script:
        "../scripts/train_tokenizer.py"


rule build_model:
    """Embedded: build a Llama and pretrain it here (or adopt its shipped checkpoint, after a
    fingerprint check). hf/gguf: resolve and record the model."""
    input:
        tokenizer=tokenizer_for,
        tables=pretrain_tables,
        checkpoint=checkpoint_for,
    output:
        directory(f"{RESULTS}/models/{{model}}"),
    log:
        "logs/build_model/{model}.log",
    benchmark:
        "benchmarks/build_model/{model}.tsv"
    conda:
        "../envs/train.yaml"
    threads: stage_threads("build_model")
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=120,
    params:
        spec=model_spec,
        code=code_hash("build_model.py"),
    script:
        "../scripts/build_model.py"
