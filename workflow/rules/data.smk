"""Data: each dataset id becomes one prepared .npz (download and checksum at paper scale)."""


rule prepare_data:
    output:
        update("data/prepared/{dataset}.npz"),
    params:
        source=lambda wc: config["datasets"][wc.dataset]["source"],
        spec=data_spec,
    log:
        "logs/prepare_data/{dataset}.log",
    benchmark:
        "results/benchmarks/prepare_data/{dataset}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        ENV
    shell:
        "python -m snnrobust prepare --source {params.source} --spec {params.spec:q} --out {output} > {log} 2>&1"
