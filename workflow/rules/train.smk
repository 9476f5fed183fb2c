"""Training: one job per (dataset, model, method, seed); resumes from its checkpoint if interrupted.

The spec holds the merged training recipe; runtime/mem_mb/gpu come from the recipe's `resources`.
"""


rule train:
    input:
        data="data/prepared/{dataset}.npz",
    output:
        model=update("results/models/{dataset}/{model}/{method}/s{seed}/model.pt"),
        metrics=update("results/models/{dataset}/{model}/{method}/s{seed}/metrics.csv"),
        run=update("results/models/{dataset}/{model}/{method}/s{seed}/run.json"),
    params:
        spec=train_spec,
        checkpoint="results/checkpoints/{dataset}/{model}/{method}/s{seed}/last.pt",
    log:
        "logs/train/{dataset}/{model}/{method}/s{seed}.log",
    benchmark:
        "results/benchmarks/train/{dataset}/{model}/{method}/s{seed}.tsv"
    threads: train_resource("threads", 1)  # one thread per job by default: see README, Threads
    resources:
        mem_mb=train_resource("mem_mb", 8000),
        runtime=train_resource("runtime", 600),
        gpu=train_resource("gpu", 0),
    conda:
        ENV
    shell:
        "OMP_NUM_THREADS={threads} python -m snnrobust train --data {input.data} --spec {params.spec:q}"
        " --out-model {output.model} --out-metrics {output.metrics} --out-run {output.run}"
        " --checkpoint {params.checkpoint} --no-progress > {log} 2>&1"
