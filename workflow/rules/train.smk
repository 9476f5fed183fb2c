"""Training: one job per (dataset, model, method, seed); resumes from its checkpoint if interrupted."""


rule train:
    input:
        data="data/prepared/{dataset}.npz",
    output:
        model="results/models/{dataset}/{model}/{method}/s{seed}/model.pt",
        metrics="results/models/{dataset}/{model}/{method}/s{seed}/metrics.csv",
        run="results/models/{dataset}/{model}/{method}/s{seed}/run.json",
    params:
        spec=train_spec,
        checkpoint="results/checkpoints/{dataset}/{model}/{method}/s{seed}/last.pt",
    log:
        "logs/train/{dataset}/{model}/{method}/s{seed}.log",
    benchmark:
        "results/benchmarks/train/{dataset}/{model}/{method}/s{seed}.tsv"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=600,
        gpu=1 if config["scale"] == "paper" else 0,
    conda:
        ENV
    shell:
        "OMP_NUM_THREADS={threads} python -m snnrobust train --data {input.data} --spec {params.spec:q}"
        " --out-model {output.model} --out-metrics {output.metrics} --out-run {output.run}"
        " --checkpoint {params.checkpoint} > {log} 2>&1"
