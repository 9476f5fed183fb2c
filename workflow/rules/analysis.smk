"""Analyses of trained models: ∇x f_y sparsity and norms (SR paper, Eq. 9)."""


rule grad_norms:
    input:
        model="results/models/{dataset}/{model}/{method}/s{seed}/model.pt",
        data="data/prepared/{dataset}.npz",
    output:
        "results/analysis/{dataset}/{model}/{method}/s{seed}/grad_norms.json",
    params:
        spec=grad_spec,
    log:
        "logs/grad_norms/{dataset}/{model}/{method}/s{seed}.log",
    benchmark:
        "results/benchmarks/grad_norms/{dataset}/{model}/{method}/s{seed}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        ENV
    shell:
        "OMP_NUM_THREADS={threads} python -m snnrobust analyze --model {input.model} --data {input.data}"
        " --spec {params.spec:q} --out {output} > {log} 2>&1"
