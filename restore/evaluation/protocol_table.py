"""What a protocol run writes once its rows are in (restore.evaluation.protocol_run):
`per_image.csv`, `summary.json` (per task and solver: every anytime step's mean, std and standard
error of each metric, and FID / KID at the FID points with the number of images they rest on),
`table.md` and `table.tex` as the papers print them (tasks as column groups, solvers as rows,
PSNR / SSIM / LPIPS / FID as mean +- standard error over images, calls and seconds per image, the
device), each solver followed by the published row of data/published/ it matches, and
`anytime.png` (PSNR, LPIPS and FID against network calls, one row of panels per task)."""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from restore.evaluation.folder import PER_IMAGE_FILE, SUMMARY_FILE
from restore.evaluation.rows import Row, csv_text
from restore.io.atomic import atomic_write, write_json, write_text
from restore.quality.fid import fid_kid

METRIC_COLUMNS = (("psnr", "PSNR", "{:.2f}"), ("ssim", "SSIM", "{:.3f}"), ("lpips", "LPIPS", "{:.3f}"),
                  ("fid", "FID", "{:.1f}"))


def _stats(values: list[float]) -> dict[str, Any]:
    vals = [v for v in values if not math.isnan(v)]
    if not vals:
        return {"mean": None, "std": None, "se": None}
    mean = sum(vals) / len(vals)
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / len(vals))
    se = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1) / len(vals)) if len(vals) > 1 else None
    return {"mean": mean, "std": std, "se": se}


def _features(out: Path, group: str, images: list[str]) -> dict[int, tuple[list[str], np.ndarray]]:
    """nfe -> (images, features) of a group's kept features."""
    by_nfe: dict[int, tuple[list[str], list[np.ndarray]]] = {}
    for rel in images:
        path = out / "features" / group / f"{rel}.npz"
        if not path.is_file():
            continue
        with np.load(path) as f:
            for nfe, feat in zip(f["nfe"].tolist(), f["features"]):
                by_nfe.setdefault(int(nfe), ([], []))
                by_nfe[int(nfe)][0].append(rel)
                by_nfe[int(nfe)][1].append(feat.astype(np.float64))
    return {n: (rels, np.stack(feats)) for n, (rels, feats) in by_nfe.items()}


def published_rows(path: Path | None, protocol: str) -> list[dict[str, str]]:
    if path is None or not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [r for r in csv.DictReader(f) if r.get("protocol") == protocol]


def summarize_protocol(out: Path, tasks, labels, images, rows: list[Row], net) -> dict[str, Any]:
    by_group: dict[str, dict[int, list[Row]]] = {}
    for row in rows:
        by_group.setdefault(row.solver, {}).setdefault(row.nfe, []).append(row)
    reference = {}
    if net is not None:
        for rel in images:
            path = out / "features" / "reference" / f"{rel}.npy"
            if path.is_file():
                reference[rel] = np.load(path).astype(np.float64)
    result: dict[str, Any] = {}
    for task in tasks:
        result[task] = {}
        for label in labels:
            group = f"{task}/{label}"
            if group not in by_group:
                continue
            steps = {}
            for nfe in sorted(by_group[group]):
                entry: dict[str, Any] = {m: _stats([getattr(r, m) for r in by_group[group][nfe]])
                                         for m in ("psnr", "ssim", "lpips", "seconds")}
                entry["count"] = len(by_group[group][nfe])
                steps[nfe] = entry
            if net is not None:
                for nfe, (rels, fake) in _features(out, group, images).items():
                    have = [i for i, rel in enumerate(rels) if rel in reference]
                    real = np.stack([reference[rels[i]] for i in have]) if have else np.zeros((0, fake.shape[1]))
                    steps.setdefault(nfe, {}).update(fid_kid(real, fake[have]) if have else fid_kid(real, real))
            last = max(by_group[group])
            result[task][label] = {"calls": last, "anytime": {str(n): e for n, e in steps.items()},
                                   "final": {"nfe": last, **steps[last]}}
    return result


def _cell(entry: dict[str, Any], key: str, spec: str) -> str:
    if key == "fid":
        return "-" if entry.get("fid") is None else spec.format(entry["fid"])
    stat = entry.get(key) or {}
    if stat.get("mean") is None:
        return "-"
    se = f" ± {spec.format(stat['se'])}" if stat.get("se") is not None else ""
    return spec.format(stat["mean"]) + se


def _published_cell(row: dict[str, str], key: str, spec: str) -> str:
    value = row.get(key, "")
    if not value:
        return "-"
    text = value  # as the source prints it
    if key == "lpips" and row.get("lpips_net", "alex") != "alex":
        text += f" ({row['lpips_net']})"
    return text + ("" if row.get("verified") == "yes" else " (unverified)")


def table_rows(summary: dict[str, Any], tasks, labels, published, show_published: bool):
    """[(kind, label, calls, seconds, {task: [cells]})]: each solver, then its published row."""
    out = []
    for label in labels:
        entries = {t: summary["tasks"][t].get(label) for t in tasks}
        calls = next((e["calls"] for e in entries.values() if e), None)
        seconds = [e["final"]["seconds"]["mean"] for e in entries.values() if e and e["final"]["seconds"]["mean"] is not None]
        cells = {t: [_cell(e["final"], k, s) if e else "-" for k, _, s in METRIC_COLUMNS] for t, e in entries.items()}
        out.append(("ours", label, str(calls or "-"), f"{sum(seconds) / len(seconds):.2f}" if seconds else "-", cells))
        mine = [r for r in published if r.get("solver") == label]
        if show_published and mine:
            cells = {t: ["-"] * len(METRIC_COLUMNS) for t in tasks}
            for r in mine:
                if r["task"] in cells:
                    cells[r["task"]] = [_published_cell(r, k, s) for k, _, s in METRIC_COLUMNS]
            out.append(("published", f"{mine[0]['method']} (published)", mine[0].get("nfe") or "-", "-", cells))
    return out


def markdown(summary, tasks, labels, published, show_published) -> str:
    s = summary
    head = ["solver", "calls / image", "s / image"] + [f"{t} {name}" for t in tasks for _, name, _ in METRIC_COLUMNS]
    lines = [f"# {s['title']}", "",
             f"Protocol `{s['protocol']}` ({s['protocol_file']}), {s['images']} images at {s['size']} x {s['size']}, "
             f"noise std {s['sigma_model']:g} on [-1, 1] (--sigma-y {s['sigma_y']:g}), model `{s['model']}`, device "
             f"{s['device']} x {s['world_size']}. Mean ± standard error over images; FID: {s['fid_variant']}.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for kind, label, calls, seconds, cells in table_rows(s, tasks, labels, published, show_published):
        name = f"*{label}*" if kind == "published" else f"`{label}`"
        lines.append("| " + " | ".join([name, calls, seconds] + [c for t in tasks for c in cells[t]]) + " |")
    lines.append("")
    lines += [f"- {line}" for line in s["notes"]]
    sources = sorted({r["source"] for r in published if any(r.get("solver") == lab for lab in labels)})
    if show_published and sources:
        lines += ["- published rows: " + "; ".join(sources)]
    return "\n".join(lines) + "\n"


def latex(summary, tasks, labels, published, show_published) -> str:
    def esc(text: str) -> str:
        return text.replace("\\", "\\textbackslash{}").replace("_", "\\_").replace("&", "\\&").replace("%", "\\%") \
            .replace("#", "\\#").replace("±", "$\\pm$").replace("@", "@")

    n = len(METRIC_COLUMNS)
    cols = "lrr" + ("|" + "c" * n) * len(tasks)
    lines = ["% " + esc(summary["title"]), f"\\begin{{tabular}}{{{cols}}}", "\\hline",
             " & & & " + " & ".join(f"\\multicolumn{{{n}}}{{c}}{{{esc(t)}}}" for t in tasks) + " \\\\",
             "Solver & Calls & s/img & " + " & ".join(name for _ in tasks for _, name, _ in METRIC_COLUMNS) + " \\\\",
             "\\hline"]
    for kind, label, calls, seconds, cells in table_rows(summary, tasks, labels, published, show_published):
        name = f"\\textit{{{esc(label)}}}" if kind == "published" else esc(label)
        lines.append(" & ".join([name, esc(calls), esc(seconds)] + [esc(c) for t in tasks for c in cells[t]]) + " \\\\")
    lines += ["\\hline", "\\end{tabular}", f"% {esc(summary['device'])}; mean $\\pm$ s.e. over {summary['images']} images"]
    return "\n".join(lines) + "\n"


def plot(summary, tasks, labels, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (("psnr", "PSNR (dB)"), ("lpips", "LPIPS"), ("fid", "FID"))
    fig, axes = plt.subplots(len(tasks), 3, figsize=(12, 3.2 * len(tasks)), squeeze=False)
    for row, task in zip(axes, tasks):
        for ax, (key, name) in zip(row, panels):
            for label in labels:
                entry = summary["tasks"][task].get(label)
                if not entry:
                    continue
                points = []
                for nfe, e in sorted(entry["anytime"].items(), key=lambda kv: int(kv[0])):
                    value = e.get(key) if key == "fid" else (e.get(key) or {}).get("mean")
                    if value is not None and not (isinstance(value, float) and math.isnan(value)):
                        points.append((int(nfe), value))
                if points:
                    ax.plot(*zip(*points), marker="o" if label.startswith("nested") else ".", label=label)
            ax.set_title(f"{task}: {name}", fontsize=9)
            ax.set_xlabel("network calls")
            ax.set_xscale("log")
            ax.grid(alpha=0.3)
            if ax.lines:
                ax.legend(fontsize=7)
            else:
                ax.text(0.5, 0.5, "not computed", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(summary["title"], fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_outputs(out: Path, protocol, cfg, tasks, images, rows: list[Row], settings, net, device: str,
                  world: int, size: int) -> dict[str, Any]:
    labels = [s.label for s in cfg.solvers]
    order = {f"{t}/{lab}": i for i, (t, lab) in enumerate((t, lab) for t in tasks for lab in labels)}
    rows = sorted((r for r in rows if r.image in set(images) and r.solver in order),
                  key=lambda r: (order[r.solver], r.image, r.nfe))
    write_text(out / PER_IMAGE_FILE, csv_text(rows, header=True))
    per_task = summarize_protocol(out, tasks, labels, images, rows, net)
    notes = list(cfg.notes)
    if size != protocol.size:
        notes.append(f"restored at {size} x {size}, not the protocol's {protocol.size}: every length of the operators "
                     "scaled by the same factor; the published numbers do not apply and are not shown")
    fid_images = sorted({e["images"] for t in per_task.values() for v in t.values()
                         for e in v["anytime"].values() if e.get("images") is not None})
    if net is None:
        notes.append("FID and KID not computed (no Inception weights: see the note printed at the start)")
    else:
        notes.append(f"FID and KID rest on {', '.join(map(str, fid_images)) or 0} images per solver and task")
        warnings = sorted({e["warning"] for t in per_task.values() for v in t.values()
                           for e in v["anytime"].values() if e.get("warning")})
        notes += [f"warning: {w}" for w in warnings]
    lpips_net = {r.get("lpips_net") for r in published_rows(protocol.published, protocol.name)} - {"alex", None, ""}
    if lpips_net:
        notes.append(f"published LPIPS uses {', '.join(sorted(lpips_net))}, ours AlexNet: those columns do not compare")
    summary = {
        "title": protocol.data.get("title", protocol.name), "protocol": protocol.name,
        "protocol_file": str(protocol.path), "protocol_digest": protocol.digest,
        "images": len({r.image for r in rows}), "size": size, "sigma_model": protocol.sigma_model,
        "sigma_y": protocol.sigma_y, "model": next(iter(settings.values())).model, "device": device,
        "world_size": world, "solvers": labels, "tasks": per_task,
        "fid_variant": getattr(net, "name", "not computed") if net is not None else "not computed",
        "settings": {f"{t}/{lab}": st.as_dict() for (t, lab), st in settings.items()}, "notes": notes,
    }
    write_json(out / SUMMARY_FILE, summary)
    published = published_rows(protocol.published, protocol.name)
    show = size == protocol.size
    write_text(out / "table.md", markdown(summary, tasks, labels, published, show))
    write_text(out / "table.tex", latex(summary, tasks, labels, published, show))
    atomic_write(out / "anytime.png", lambda tmp: plot(summary, tasks, labels, tmp))
    if not cfg.quiet:
        sys.stdout.write(markdown(summary, tasks, labels, published, show))
        print(f"wrote {out / 'table.md'}, table.tex, anytime.png, summary.json, per_image.csv")
    return summary
