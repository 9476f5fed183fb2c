"""Attacks: one job per (trained model, attack, ε); the result is one tidy JSON row with its cost."""


rule attack:
    input:
        model="results/models/{dataset}/{model}/{method}/s{seed}/model.pt",
        data="data/prepared/{dataset}.npz",
    output:
        "results/attacks/{dataset}/{model}/{method}/s{seed}/{attack}_eps{eps}.json",
    params:
        spec=attack_spec,
    log:
        "logs/attack/{dataset}/{model}/{method}/s{seed}/{attack}_eps{eps}.log",
    benchmark:
        "results/benchmarks/attack/{dataset}/{model}/{method}/s{seed}/{attack}_eps{eps}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=1 if config["scale"] == "paper" else 0,
    conda:
        ENV
    shell:
        "OMP_NUM_THREADS={threads} python -m snnrobust attack --model {input.model} --data {input.data}"
        " --spec {params.spec:q} --out {output} --no-progress > {log} 2>&1"
