"""The Binoculars histograms of docs/INSPECT.md, drawn from the results that
`python benchmarks/rank_eval.py --part llm` leaves in runs/rank_eval/results-llm.json:

    python benchmarks/plot_binoculars.py
"""

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

KEY = "Binoculars (observer small-v1, performer fast-v1; the default)"
SETS = ["small-v1 T=1", "small-v1 top-p 0.9", "small-v1 T=0.7", "fast-v1 top-p 0.9"]


def main() -> None:
    d = json.load(open("runs/rank_eval/results-llm.json"))["llm"]
    human = d["per_document_human"][KEY]
    bins = [0.68 + 0.01 * i for i in range(46)]
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.2), sharex=True, sharey=True)
    for ax, name in zip(axes, SETS):
        run = d["decodings"][name]
        ax.hist(human, bins=bins, alpha=0.6, label="human (held out)")
        ax.hist(run["per_document_generated"][KEY], bins=bins, alpha=0.6, label="generated")
        ax.set_title(f"{name}\nROC AUC {run['scores'][KEY]['auc']:.3f}", fontsize=10)
        ax.set_xlabel("Binoculars score")
    axes[0].set_ylabel("documents")
    axes[0].legend(fontsize=8)
    fig.suptitle("Binoculars (observer lmpress-small-v1, performer lmpress-fast-v1): "
                 "100 human vs 100 sampled documents", fontsize=10)
    fig.tight_layout()
    fig.savefig("docs/figures/binoculars.png", dpi=110)


if __name__ == "__main__":
    main()
