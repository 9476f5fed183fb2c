"""Attacks: one job per (trained model, attack, budget) — white-box on the model itself, or black-box
transfer (adversarial examples made on a source model, scored on the target). Each result is tidy
JSON rows with their cost; the attack id may be a grid-derived variant (e.g. pgd10-steps5)."""


rule attack:
    input:
        model="results/models/{dataset}/{model}/{method}/s{seed}/model.pt",
        data="data/prepared/{dataset}.npz",
    output:
        update("results/attacks/{dataset}/{model}/{method}/s{seed}/{attack}_eps{eps}.json"),
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


rule transfer:
    input:
        model="results/models/{dataset}/{model}/{method}/s{seed}/model.pt",
        source="results/models/{dataset}/{src_model}/{src_method}/s{src_seed}/model.pt",
        data="data/prepared/{dataset}.npz",
    output:
        update(
            "results/transfer/{dataset}/{model}/{method}/s{seed}/from/{src_model}/{src_method}/s{src_seed}/{attack}_eps{eps}.json"
        ),
    params:
        spec=transfer_spec,
    log:
        "logs/transfer/{dataset}/{model}/{method}/s{seed}/from/{src_model}/{src_method}/s{src_seed}/{attack}_eps{eps}.log",
    benchmark:
        "results/benchmarks/transfer/{dataset}/{model}/{method}/s{seed}/from/{src_model}/{src_method}/s{src_seed}/{attack}_eps{eps}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=1 if config["scale"] == "paper" else 0,
    conda:
        ENV
    shell:
        "OMP_NUM_THREADS={threads} python -m snnrobust attack --model {input.model} --source-model {input.source}"
        " --data {input.data} --spec {params.spec:q} --out {output} --no-progress > {log} 2>&1"
