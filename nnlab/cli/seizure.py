"""`nnlab seizure ...`: EEG seizures. `bonn`: k-fold cross-validated segment classification on the
Bonn sets with the three-tower transformer. Each command is registered on the one `seizure` group
in `register`; a new command adds its function and one line there."""

from __future__ import annotations

import typer

from nnlab.cli.common import console, group, table, train_command


def show_bonn(runner, summary) -> None:
    rows = summary["rows"]
    console.print(table(rows, f"Bonn {summary['pair']}: test folds, best checkpoints"))
    sd = {m: summary[f"{m}_sd"] for m in ("acc", "sensitivity", "specificity", "auc")}
    pooled = summary["pooled"]
    console.print(
        f"mean over {summary['folds_run']} of {summary['folds']} folds: "
        f"accuracy {summary['acc']:.4f} ± {sd['acc']:.4f}, "
        f"sensitivity {summary['sensitivity']:.4f} ± {sd['sensitivity']:.4f}, "
        f"specificity {summary['specificity']:.4f} ± {sd['specificity']:.4f}, "
        f"AUC {summary['auc']:.4f}; {pooled['errors']} of {pooled['segments']} test segments "
        f"wrong ({pooled['false_negatives']} missed seizures, "
        f"{pooled['false_positives']} false alarms)"
    )
    gates = [{"true class": name, **values} for name, values in summary["gates_by_class"].items()]
    console.print(table(gates, "mean gate weight of each tower"))
    console.print(f"wall time {summary['wall_s']:.0f} s")


def register(app: typer.Typer) -> None:
    from nnlab.tasks.bonn import BonnCV

    seizure = group(
        "seizure",
        "EEG seizures: Bonn segment classification with the three-tower transformer.",
    )
    seizure.command("bonn")(
        train_command(
            BonnCV,
            "seizure",
            "Bonn segments (A vs E, D vs E, AD vs E): stratified k-fold cross-validation of the "
            "three-tower transformer on log spectrograms (one child run per fold); mean "
            "accuracy, sensitivity, specificity and the gate weights per class.",
            show=show_bonn,
        )
    )
    app.add_typer(seizure)
