"""The HTML report of ``neurodeploy lsm zeroshot``: accuracy table, confusion matrices of
the unseen and seen classes (both directions, first device seed), a 2-D embedding plot
(PCA of the test embeddings of both modalities) and the energy comparison; figures are
PNGs embedded in one self-contained file."""

from __future__ import annotations

import base64
import html
import io

import numpy as np


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def confusion_figure(run: dict, split, title: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(15, 3.6))
    panels = [(p, d) for p in ("unseen", "seen") for d in ("audio_to_image", "image_to_audio")]
    for ax, (part, d) in zip(axes, panels):
        m = np.asarray(run[part][f"confusion_{d}"])
        cls = split[1] if part == "unseen" else split[0]
        ax.imshow(m, cmap="Blues")
        for (i, j), v in np.ndenumerate(m):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=8)
        ax.set_xticks(range(len(cls)), [str(c) for c in cls])
        ax.set_yticks(range(len(cls)), [str(c) for c in cls])
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{part} {d.replace('_', ' ')}: {run[part][d] * 100:.1f} %", fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return _png(fig)


def embedding_figure(za, ya, zb, yb, split, title: str) -> str:
    """PCA (2-D) of the image (circles) and audio (crosses) test embeddings, by class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    z = np.concatenate([za, zb])
    zc = z - z.mean(0)
    _, _, vt = np.linalg.svd(zc, full_matrices=False)
    p = zc @ vt[:2].T
    pa, pb = p[: len(za)], p[len(za):]
    fig, ax = plt.subplots(figsize=(6.5, 5.2))
    cmap = plt.get_cmap("tab10")
    for c in (*split[0], *split[1]):
        ax.scatter(*pa[ya == c].T, s=10, marker="o", color=cmap(c), alpha=0.5)
        ax.scatter(*pb[yb == c].T, s=14, marker="x", color=cmap(c), alpha=0.6,
                   label=f"{c}{' (unseen)' if c in split[1] else ''}")
    ax.legend(fontsize=7, ncol=2, title="class (o image, x audio)", title_fontsize=7)
    ax.set_title(title)
    fig.tight_layout()
    return _png(fig)


def _table(summary: dict) -> str:
    rows = []
    for v in ("software", "rram"):
        if v not in summary:
            continue
        cells = "".join(f"<td>{summary[v][k]['mean'] * 100:.1f} ± {summary[v][k]['std'] * 100:.1f}</td>"
                        for k in ("seen/audio_to_image", "seen/image_to_audio", "unseen/audio_to_image",
                                  "unseen/image_to_audio"))
        rows.append(f"<tr><th>{v} ({len(summary[v]['seen/audio_to_image']['values'])} run(s))</th>{cells}</tr>")
    head = ("<tr><th></th><th>seen audio→image</th><th>seen image→audio</th><th>unseen audio→image</th>"
            "<th>unseen image→audio</th></tr>")
    return f"<table border=1 cellpadding=4>{head}{''.join(rows)}</table>"


def _energy(energy: dict | None) -> str:
    if not energy:
        return "<p>energy not computed</p>"
    rows = []
    for m, e in energy.items():
        rows.append(f"<tr><th>{m}</th><td>{e['rram']['total_J'] * 1e6:.3g}</td><td>{e['digital_dense']['total_J'] * 1e6:.3g}</td>"
                    f"<td>{e['digital_event']['total_J'] * 1e6:.3g}</td><td>{e['ratio_dense']:.1f}× / {e['ratio_event']:.1f}×</td>"
                    f"<td>{e['ratio_dense_dynamic']:.1f}× / {e['ratio_event_dynamic']:.1f}×</td></tr>")
    head = ("<tr><th>reservoir + head</th><th>RRAM µJ/inference</th><th>digital dense µJ</th><th>digital event µJ</th>"
            "<th>ratio dense / event</th><th>ratio, RRAM dynamic only</th></tr>")
    return f"<table border=1 cellpadding=4>{head}{''.join(rows)}</table>"


def write_html(path, result, summary: dict, energy: dict | None, labels: dict, meta: dict) -> None:
    """Write the report (atomically). ``labels``: {"image": y_test, "audio": y_test}."""
    from ...graph.io import write_atomic

    split = result.split
    parts = [f"<h1>Zero-shot multimodal LSM on RRAM</h1><p>seen classes {list(split[0])}, unseen {list(split[1])}; "
             f"{html.escape(str(meta))}</p>", "<h2>Retrieval accuracy (%)</h2>", _table(summary)]
    if "gap_rram_minus_software" in summary:
        gap = summary["gap_rram_minus_software"]
        parts.append("<p>RRAM − software (mean over device seeds): " + ", ".join(
            f"{k} {v * 100:+.1f} pp" for k, v in gap.items()) + "</p>")
    for v, runs in result.runs.items():
        parts.append(f"<h2>{v}: confusion matrices (first run)</h2>")
        parts.append(confusion_figure(runs[0], split, v))
        za, zb = result.embeddings[v]
        parts.append(embedding_figure(za, np.asarray(labels["image"]), zb, np.asarray(labels["audio"]), split,
                                      f"{v}: test embeddings"))
    parts += ["<h2>Energy per inference</h2>", _energy(energy)]
    text = "<!doctype html><html><head><meta charset='utf-8'><title>LSM zero-shot</title></head><body>" + \
        "\n".join(parts) + "</body></html>"
    write_atomic(path, lambda tmp: tmp.write_text(text))
