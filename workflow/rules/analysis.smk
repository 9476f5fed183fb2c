"""Analyses of trained models, one job per (trained model, analysis id); dispatched through the
analyses registry (snnrobust.analysis.ANALYSES), e.g. grad_norms: ∇x f_y sparsity and norms (SR Eq. 9)."""


rule analyze:
    input:
        model="results/models/{dataset}/{model}/{method}/s{seed}/model.pt",
        data="data/prepared/{dataset}.npz",
    output:
        update("results/analysis/{dataset}/{model}/{method}/s{seed}/{analysis}.json"),
    params:
        spec=analysis_spec,
    log:
        "logs/analyze/{dataset}/{model}/{method}/s{seed}/{analysis}.log",
    benchmark:
        "results/benchmarks/analyze/{dataset}/{model}/{method}/s{seed}/{analysis}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=1 if config["scale"] == "paper" else 0,
    conda:
        ENV
    shell:
        "OMP_NUM_THREADS={threads} python -m snnrobust analyze --model {input.model} --data {input.data}"
        " --spec {params.spec:q} --out {output} > {log} 2>&1"
